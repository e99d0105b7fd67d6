from django.urls import path

from notebooks import apis

P = "projects/<int:project_id>/"
urlpatterns = [
    path(P + "notebook-servers", apis.NotebookServerListStartApi.as_view(), name="api-notebook-servers"),
    path(
        P + "notebook-servers/<int:server_id>",
        apis.NotebookServerDetailApi.as_view(),
        name="api-notebook-server",
    ),
    path(
        P + "notebook-servers/<int:server_id>/stop",
        apis.NotebookServerStopApi.as_view(),
        name="api-notebook-server-stop",
    ),
]
