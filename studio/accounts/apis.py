from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from studio.accounts import selectors, services
from studio.core.api import StudioApi
from studio.errors import NotFound
from studio.projects import permissions as matrix
from studio.projects.models import Project


class TokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    project_id = serializers.IntegerField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    is_active = serializers.BooleanField()


class TokenCreatedOutput(TokenOutput):
    token = serializers.CharField(help_text="The token itself: shown this once, only its hash is kept.")


class TokenListCreateApi(StudioApi):
    required_action = {"GET": matrix.AUTHENTICATED, "POST": matrix.AUTHENTICATED}

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        project_id = serializers.IntegerField(required=False, allow_null=True)
        expires_at = serializers.DateTimeField(required=False, allow_null=True)

    @extend_schema(responses=TokenOutput(many=True))
    def get(self, request):
        return self.paginate(request, selectors.api_token_list(user=request.user), TokenOutput)

    @extend_schema(request=InputSerializer, responses={201: TokenCreatedOutput})
    def post(self, request):
        data = self.validated(request)
        project = None
        if data.get("project_id") is not None:
            project = Project.objects.filter(pk=data["project_id"], memberships__user=request.user).first()
            if project is None:
                raise NotFound("project_id: no such project among yours.")
        scope = getattr(request.auth, "project", None)
        if scope is not None and project != scope:
            raise NotFound("project_id: a project-scoped token can only create tokens for its own project.")
        token, raw = services.api_token_create(
            user=request.user,
            name=data["name"],
            project=project,
            expires_at=data.get("expires_at"),
            ip=self.ip,
        )
        body = TokenOutput(token).data
        body["token"] = raw  # shown this once; only its hash is kept
        return Response(body, status=201)


class TokenRevokeApi(StudioApi):
    required_action = {"DELETE": matrix.AUTHENTICATED}

    @extend_schema(responses=TokenOutput, summary="Revoke a token")
    def delete(self, request, token_id):
        token = services.api_token_revoke(user=request.user, token_id=token_id, ip=self.ip)
        return Response(TokenOutput(token).data)


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField()
    is_staff = serializers.BooleanField()
    is_active = serializers.BooleanField()
    date_joined = serializers.DateTimeField()


class UserListCreateApi(StudioApi):
    required_action = {"GET": matrix.STAFF, "POST": matrix.STAFF}

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, write_only=True)
        email = serializers.EmailField(required=False, allow_blank=True, default="")
        is_staff = serializers.BooleanField(default=False)

    @extend_schema(responses=UserOutput(many=True), parameters=[OpenApiParameter("search", str)])
    def get(self, request):
        return self.paginate(
            request, selectors.user_list(search=request.query_params.get("search", "")), UserOutput
        )

    @extend_schema(request=InputSerializer, responses={201: UserOutput})
    def post(self, request):
        data = self.validated(request)
        user = services.user_create(actor=request.user, ip=self.ip, **data)
        return Response(UserOutput(user).data, status=201)
