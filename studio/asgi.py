"""ASGI entry point: Django for HTTP, Channels for the project websockets, the notebook proxy."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from notebooks.proxy import NotebookProxy  # noqa: E402
from studio.routing import websocket_urlpatterns  # noqa: E402

# /notebooks/... (HTTP and websockets) goes to the users' JupyterLab servers through the authenticated
# proxy; everything else to Django and Channels.
application = NotebookProxy(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)
