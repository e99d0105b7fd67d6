"""Every API error has one shape: {"error": {"code", "message", "detail"}}."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from studio.errors import ApplicationError


def _flatten(detail, prefix="") -> list[str]:
    if isinstance(detail, dict):
        return [line for key, value in detail.items() for line in _flatten(value, f"{prefix}{key}: ")]
    if isinstance(detail, list):
        return [line for value in detail for line in _flatten(value, prefix)]
    return [f"{prefix}{detail}"]


def error_body(code: str, message: str, detail=None) -> dict:
    return {"error": {"code": code, "message": message, "detail": detail if detail is not None else {}}}


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(error_body(exc.code, exc.message, exc.extra), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        set_rollback()
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(error_body("invalid", "; ".join(_flatten(detail)), detail), status=400)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(error_body("permission_denied", "You may not do this."), status=403)
    if isinstance(exc, SuspiciousOperation):
        return Response(error_body("invalid", str(exc)), status=400)
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        if isinstance(exc, exceptions.ValidationError):
            return Response(
                error_body("invalid", "; ".join(_flatten(exc.detail)), exc.detail),
                status=status.HTTP_400_BAD_REQUEST,
            )
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        return Response(error_body(code, str(exc.detail)), status=exc.status_code, headers=headers)
    return None


def api_not_found(request, exception=None):
    return JsonResponse(error_body("not_found", f"No API route matches {request.path}."), status=404)


def api_server_error(request):
    return JsonResponse(
        error_body("server_error", "Studio hit an unexpected error; it has been logged."), status=500
    )
