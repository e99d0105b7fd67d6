"""Base classes of every API view: declared actions, project scoping, validated input."""

from rest_framework.views import APIView

from studio.core.pagination import StudioPagination
from studio.core.permissions import declared_action
from studio.projects.access import ProjectAccess, project_access


def client_ip(request) -> str | None:
    # Behind a trusted reverse proxy, set SECURE_PROXY_SSL_HEADER and let the proxy overwrite REMOTE_ADDR.
    return request.META.get("REMOTE_ADDR") or None


class StudioApi(APIView):
    """An API view. Subclasses set `required_action`: one action, or a dict per HTTP method."""

    required_action: str | dict[str, str]
    pagination_class = StudioPagination

    def validated(self, request, serializer_class=None, *, data=None):
        serializer_class = serializer_class or self.InputSerializer
        serializer = serializer_class(data=request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def paginate(self, request, queryset, output_serializer):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(output_serializer(page, many=True).data)

    @property
    def ip(self) -> str | None:
        return client_ip(self.request)


class ProjectScopedApi(StudioApi):
    """An API view under /projects/<project_id>/: the caller must be a member whose role allows the action."""

    access: ProjectAccess

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.access = project_access(
            user=request.user,
            project_id=kwargs["project_id"],
            action=declared_action(self, request.method) or "project.view",
            token=request.auth if hasattr(request.auth, "project_id") else None,
        )

    @property
    def project(self):
        return self.access.project
