from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from studio.core.health import health_report
from studio.core.pages import page
from studio.projects import permissions as matrix
from studio.projects import selectors as project_selectors


@page(matrix.PUBLIC)
def health(request):
    """JSON for probes and scripts; the same report as a page when a browser asks for HTML."""
    report = health_report()
    status = 200 if report["status"] == "ok" else 503
    wants_page = "text/html" in request.headers.get("Accept", "") or request.GET.get("format") == "html"
    if wants_page:
        return render(request, "core/health.html", {"report": report}, status=status)
    return JsonResponse(report, status=status)


@page(matrix.AUTHENTICATED)
def home(request):
    last = request.session.get("last_project_id")
    projects = project_selectors.project_list(user=request.user)
    if last and projects.filter(pk=last).exists():
        return redirect("projects:home", project_id=last)
    return redirect("projects:list")


class SchemaView(SpectacularAPIView):
    required_action = matrix.AUTHENTICATED


@method_decorator(csp_update({"style-src": [UNSAFE_INLINE]}), name="dispatch")
class SwaggerView(SpectacularSwaggerSplitView):
    # Swagger UI sets inline styles; its scripts still come only from our own origin.
    required_action = matrix.AUTHENTICATED
