from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from studio.audit import selectors, services
from studio.core.api import ProjectScopedApi


class AuditEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_username")
    action = serializers.CharField()
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    target = serializers.CharField(source="target_repr")
    ip = serializers.IPAddressField(allow_null=True)
    data = serializers.JSONField()


class AuditFilterSerializer(serializers.Serializer):
    action = serializers.CharField(required=False, max_length=64)
    actor = serializers.CharField(required=False, max_length=150)
    target_type = serializers.CharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class AuditEventListApi(ProjectScopedApi):
    required_action = "audit.view"

    @extend_schema(parameters=[AuditFilterSerializer], responses=AuditEventOutput(many=True))
    def get(self, request, project_id):
        filters = self.validated(request, AuditFilterSerializer, data=request.query_params)
        events = selectors.audit_event_queryset(project=self.project, filters=filters)
        return self.paginate(request, events, AuditEventOutput)


class AuditExportOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    row_count = serializers.IntegerField()
    error = serializers.CharField()
    filters = serializers.JSONField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class AuditExportStartApi(ProjectScopedApi):
    required_action = "audit.export"

    @extend_schema(request=AuditFilterSerializer, responses={202: AuditExportOutput})
    def post(self, request, project_id):
        filters = self.validated(request, AuditFilterSerializer)
        filters = {
            key: value.isoformat() if hasattr(value, "isoformat") else value for key, value in filters.items()
        }
        export = services.audit_export_start(
            user=request.user, project=self.project, filters=filters, ip=self.ip
        )
        return Response(AuditExportOutput(export).data, status=202)


class AuditExportDetailApi(ProjectScopedApi):
    required_action = "audit.view"

    @extend_schema(responses=AuditExportOutput)
    def get(self, request, project_id, export_id):
        return Response(
            AuditExportOutput(selectors.audit_export_get(project=self.project, export_id=export_id)).data
        )


class AuditExportDownloadApi(ProjectScopedApi):
    required_action = "audit.view"

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    def get(self, request, project_id, export_id):
        from django.http import FileResponse

        from studio.errors import ApplicationError
        from studio.storage import artifact_storage

        export = selectors.audit_export_get(project=self.project, export_id=export_id)
        if export.status != export.Status.DONE:
            raise ApplicationError(
                f"The export is {export.status}, not ready yet.", code="not_ready", status=409
            )
        handle = artifact_storage().open(export.artifact_name, "rb")
        return FileResponse(
            handle,
            as_attachment=True,
            filename=f"{self.project.slug}-audit-{export.pk}.csv",
            content_type="text/csv",
        )
