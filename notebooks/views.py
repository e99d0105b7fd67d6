"""The notebooks page: start/stop the caller's server or the project's shared one, and the lab in an iframe.

The browser starts, stops and follows servers through the JSON API (notebooks/apis.py); the lab itself
is served same-origin through the proxy (notebooks/proxy.py), so the iframe's websockets carry the
studio session and never a Jupyter token.
"""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from notebooks import selectors, services
from studio.core.pages import page


@page("notebook.use")
@require_GET
def notebooks_page(request, project_id):
    project = request.access.project
    servers = [
        services.notebook_server_reconcile(server=server)
        for server in selectors.notebook_server_list(user=request.user, project=project)
    ]
    own = next((server for server in servers if not server.is_shared), None)
    shared = next((server for server in servers if server.is_shared), None)
    wanted = request.GET.get("server", "own")
    context = {
        "own": own,
        "shared": shared,
        "selected": "shared" if wanted == "shared" else "own",
        "page_data": {
            "project_id": project.pk,
            "selected": "shared" if wanted == "shared" else "own",
            "servers_url": f"/api/v1/projects/{project.pk}/notebook-servers",
        },
    }
    return render(request, "notebooks/lab.html", context)
