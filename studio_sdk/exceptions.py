"""Typed errors raised by the SDK; each carries the server's message from its error body."""

from typing import Any


class StudioError(Exception):
    """Base of every SDK error: `message`, HTTP `status` (None off the wire), server `code` and `detail`."""

    def __init__(
        self, message: str, status: int | None = None, code: str | None = None, detail: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.detail = detail if detail is not None else {}

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r}, code={self.code!r})"


class ConfigurationError(StudioError):
    """The client lacks a setting (URL or token) it needs."""


class StudioConnectionError(StudioError, ConnectionError):
    """The server could not be reached or did not answer in time (no HTTP status)."""


class ValidationError(StudioError):
    """400/422: the request's input was rejected; the message names the field."""


class AuthenticationError(StudioError):
    """401: the token is missing, malformed, expired or revoked."""


class PermissionDeniedError(StudioError):
    """403: the caller's role does not allow the action."""


class NotFoundError(StudioError):
    """404: no such object, or not visible to the caller."""


class ConflictError(StudioError):
    """409: the request conflicts with the object's state (e.g. an archived project, a duplicate)."""


class ServerError(StudioError):
    """5xx: the server failed."""


_BY_STATUS: dict[int, type[StudioError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
}


def error_class_for(status: int) -> type[StudioError]:
    """Return the exception class for an HTTP error status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, StudioError)
