from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from studio.core.api import ProjectScopedApi, StudioApi
from studio.projects import permissions as matrix
from studio.projects import selectors, services
from studio.projects.permissions import Role


class ProjectOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    description = serializers.CharField()
    is_archived = serializers.BooleanField()
    role = serializers.CharField(allow_null=True)
    member_count = serializers.IntegerField(required=False)
    created_at = serializers.DateTimeField()


class ProjectListCreateApi(StudioApi):
    required_action = {"GET": matrix.AUTHENTICATED, "POST": matrix.AUTHENTICATED}

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        description = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    @extend_schema(
        responses=ProjectOutput(many=True),
        parameters=[OpenApiParameter("archived", bool), OpenApiParameter("name", str)],
    )
    def get(self, request):
        include_archived = request.query_params.get("archived") in ("1", "true", "yes")
        projects = selectors.project_list(
            user=request.user, token=request.auth, include_archived=include_archived
        )
        if request.query_params.get("name"):
            projects = projects.filter(name=request.query_params["name"])
        return self.paginate(request, projects, ProjectOutput)

    @extend_schema(request=InputSerializer, responses={201: ProjectOutput})
    def post(self, request):
        data = self.validated(request)
        project = services.project_create(user=request.user, ip=self.ip, **data)
        project.role = Role.OWNER
        project.member_count = 1
        return Response(ProjectOutput(project).data, status=201)


class ProjectDetailApi(ProjectScopedApi):
    required_action = {"GET": "project.view", "PATCH": "project.update"}

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100, required=False)
        description = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def _output(self, project):
        project.role = self.access.role
        project.member_count = selectors.project_counts(project=project)["members"]
        return Response(ProjectOutput(project).data)

    @extend_schema(responses=ProjectOutput)
    def get(self, request, project_id):
        return self._output(self.project)

    @extend_schema(request=InputSerializer, responses=ProjectOutput)
    def patch(self, request, project_id):
        data = self.validated(request)
        project = services.project_update(user=request.user, project=self.project, ip=self.ip, **data)
        return self._output(project)


class ProjectArchiveApi(ProjectScopedApi):
    required_action = {"POST": "project.archive", "DELETE": "project.archive"}

    @extend_schema(request=None, responses=ProjectOutput, summary="Archive the project (read-only)")
    def post(self, request, project_id):
        project = services.project_set_archived(
            user=request.user, project=self.project, is_archived=True, ip=self.ip
        )
        project.role = self.access.role
        return Response(ProjectOutput(project).data)

    @extend_schema(responses=ProjectOutput, summary="Unarchive the project")
    def delete(self, request, project_id):
        project = services.project_set_archived(
            user=request.user, project=self.project, is_archived=False, ip=self.ip
        )
        project.role = self.access.role
        return Response(ProjectOutput(project).data)


class MemberOutput(serializers.Serializer):
    user_id = serializers.IntegerField(source="user.id")
    username = serializers.CharField(source="user.username")
    email = serializers.CharField(source="user.email")
    role = serializers.CharField()
    created_at = serializers.DateTimeField()


class MemberListAddApi(ProjectScopedApi):
    required_action = {"GET": "member.view", "POST": "member.manage"}

    class InputSerializer(serializers.Serializer):
        user = serializers.CharField(max_length=254, help_text="username or e-mail address")
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(responses=MemberOutput(many=True))
    def get(self, request, project_id):
        return self.paginate(request, selectors.membership_list(project=self.project), MemberOutput)

    @extend_schema(request=InputSerializer, responses={201: MemberOutput})
    def post(self, request, project_id):
        data = self.validated(request)
        membership = services.membership_add(
            user=request.user, project=self.project, invitee=data["user"], role=data["role"], ip=self.ip
        )
        return Response(MemberOutput(membership).data, status=201)


class MemberDetailApi(ProjectScopedApi):
    # Leaving a project needs only membership; the service checks member.manage for removing others.
    required_action = {"PATCH": "member.manage", "DELETE": "project.view"}

    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(request=InputSerializer, responses=MemberOutput)
    def patch(self, request, project_id, user_id):
        data = self.validated(request)
        membership = services.membership_change_role(
            user=request.user, project=self.project, member_user_id=user_id, role=data["role"], ip=self.ip
        )
        return Response(MemberOutput(membership).data)

    @extend_schema(responses={204: None}, summary="Remove a member (or leave the project yourself)")
    def delete(self, request, project_id, user_id):
        services.membership_remove(
            user=request.user, project=self.project, member_user_id=user_id, ip=self.ip
        )
        return Response(status=204)


class WhoAmIApi(StudioApi):
    required_action = matrix.AUTHENTICATED

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        email = serializers.CharField()
        is_staff = serializers.BooleanField()
        auth = serializers.ChoiceField(choices=["token", "session"], required=False)
        token_project_id = serializers.IntegerField(allow_null=True, required=False)

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        data = self.OutputSerializer(request.user).data
        token = request.auth if hasattr(request.auth, "project_id") else None
        data["auth"] = "token" if token else "session"
        data["token_project_id"] = token.project_id if token else None
        return Response(data)
