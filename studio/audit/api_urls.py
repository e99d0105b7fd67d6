from django.urls import path

from studio.audit import apis

urlpatterns = [
    path("projects/<int:project_id>/audit", apis.AuditEventListApi.as_view(), name="api-audit"),
    path(
        "projects/<int:project_id>/audit/exports",
        apis.AuditExportStartApi.as_view(),
        name="api-audit-exports",
    ),
    path(
        "projects/<int:project_id>/audit/exports/<int:export_id>",
        apis.AuditExportDetailApi.as_view(),
        name="api-audit-export",
    ),
    path(
        "projects/<int:project_id>/audit/exports/<int:export_id>/download",
        apis.AuditExportDownloadApi.as_view(),
        name="api-audit-export-download",
    ),
]
