from django.urls import path

from studio.projects import apis

urlpatterns = [
    path("projects", apis.ProjectListCreateApi.as_view(), name="api-projects"),
    path("projects/<int:project_id>", apis.ProjectDetailApi.as_view(), name="api-project"),
    path("projects/<int:project_id>/archive", apis.ProjectArchiveApi.as_view(), name="api-project-archive"),
    path("projects/<int:project_id>/members", apis.MemberListAddApi.as_view(), name="api-members"),
    path(
        "projects/<int:project_id>/members/<int:user_id>", apis.MemberDetailApi.as_view(), name="api-member"
    ),
]
