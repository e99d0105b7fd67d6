from django.contrib import admin
from django.urls import include, path

from studio.core import views as core_views

api_v1 = [
    path("", include("studio.accounts.api_urls")),
    path("", include("studio.projects.api_urls")),
    path("", include("studio.audit.api_urls")),
    path("", include("datasets.api_urls")),
    path("", include("training.api_urls")),
    path("", include("notebooks.api_urls")),
]

urlpatterns = [
    path("", core_views.home, name="home"),
    path("health", core_views.health, name="health"),
    path("admin/", admin.site.urls),
    path("accounts/", include("studio.accounts.urls")),
    path("projects/<int:project_id>/datasets/", include("datasets.urls")),
    path("projects/<int:project_id>/training/", include("training.urls")),
    path("projects/<int:project_id>/notebooks/", include("notebooks.urls")),
    path("projects/", include("studio.projects.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", core_views.SchemaView.as_view(), name="schema"),
    path("api/docs/", core_views.SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

handler404 = "studio.core.handlers.not_found"
handler500 = "studio.core.handlers.server_error"
