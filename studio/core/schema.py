"""OpenAPI descriptions for what drf-spectacular cannot infer from plain APIViews."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "studio.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (`stu_…`), created under user menu → API tokens.",
        }


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    detail = serializers.JSONField()


class ErrorOutput(serializers.Serializer):
    error = ErrorDetail()


class StudioAutoSchema(AutoSchema):
    """Name nested `InputSerializer`s after their view (ProjectListCreateInput, not InputRequest)."""

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False):
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        qualname = type(serializer).__qualname__
        if "." in qualname:
            owner, inner = qualname.rsplit(".", 2)[-2:]
            name = owner.removesuffix("Api") + inner.removesuffix("Serializer")
        return name
