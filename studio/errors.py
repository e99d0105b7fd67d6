"""The one domain error type. Services raise it; the API turns it into a 4xx JSON error."""

from typing import Any


class ApplicationError(Exception):
    """A request that cannot be honoured, with a message a user can act on."""

    status_code = 400

    def __init__(
        self, message: str, *, code: str = "invalid", extra: dict[str, Any] | None = None, status=None
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra or {}
        if status is not None:
            self.status_code = status


class NotFound(ApplicationError):
    status_code = 404

    def __init__(self, message: str = "Not found.", **kwargs):
        super().__init__(message, code="not_found", **kwargs)


class PermissionDenied(ApplicationError):
    status_code = 403

    def __init__(self, message: str = "Your role in this project does not allow this.", **kwargs):
        super().__init__(message, code="permission_denied", **kwargs)
