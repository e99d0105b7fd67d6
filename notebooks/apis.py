from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from notebooks import selectors, services
from studio.core.api import ProjectScopedApi
from studio.errors import NotFound


class NotebookServerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    is_shared = serializers.BooleanField()
    user = serializers.CharField(source="user.username")
    state = serializers.CharField()
    message = serializers.CharField()
    url = serializers.CharField(source="base_url")
    lab_url = serializers.SerializerMethodField()
    started_at = serializers.DateTimeField(allow_null=True)
    ready_at = serializers.DateTimeField(allow_null=True)
    stopped_at = serializers.DateTimeField(allow_null=True)
    last_activity = serializers.DateTimeField(allow_null=True)

    def get_lab_url(self, server) -> str:
        return server.base_url + "lab"


def kernel_studio_url(request) -> str:
    """The URL kernels use to reach the studio: the setting, else the one the browser used (local mode)."""
    return settings.STUDIO_NOTEBOOK_STUDIO_URL or request.build_absolute_uri("/").rstrip("/")


class NotebookServerListStartApi(ProjectScopedApi):
    required_action = {"GET": "notebook.use", "POST": "notebook.use"}

    class InputSerializer(serializers.Serializer):
        is_shared = serializers.BooleanField(default=False)

    @extend_schema(responses=NotebookServerOutput(many=True))
    def get(self, request, project_id):
        servers = [
            services.notebook_server_reconcile(server=server)
            for server in selectors.notebook_server_list(user=request.user, project=self.project)
        ]
        return Response({"results": NotebookServerOutput(servers, many=True).data})

    @extend_schema(request=InputSerializer, responses={202: NotebookServerOutput})
    def post(self, request, project_id):
        data = self.validated(request)
        server = services.notebook_server_start(
            user=request.user,
            project=self.project,
            is_shared=data["is_shared"],
            studio_url=kernel_studio_url(request),
            ip=self.ip,
        )
        return Response(NotebookServerOutput(server).data, status=202)


class NotebookServerDetailApi(ProjectScopedApi):
    required_action = "notebook.use"

    @extend_schema(responses=NotebookServerOutput)
    def get(self, request, project_id, server_id):
        server = selectors.notebook_server_get(user=request.user, project=self.project, server_id=server_id)
        if server is None:
            raise NotFound("No such notebook server.")
        server = services.notebook_server_reconcile(server=server)
        return Response(NotebookServerOutput(server).data)


class NotebookServerStopApi(ProjectScopedApi):
    required_action = "notebook.use"

    @extend_schema(request=None, responses=NotebookServerOutput)
    def post(self, request, project_id, server_id):
        server = selectors.notebook_server_get(user=request.user, project=self.project, server_id=server_id)
        if server is None:
            raise NotFound("No such notebook server.")
        server = services.notebook_server_stop(user=request.user, server=server, ip=self.ip)
        return Response(NotebookServerOutput(server).data)
