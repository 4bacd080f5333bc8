"""The service's one error family, rendered as a RestException by one handler."""

from __future__ import annotations


class ServiceError(Exception):
    """An error with the HTTP status and message a client sees."""

    status = 500
    message = "Internal server error"

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.headers = headers or {}


class BadRequest(ServiceError):
    status = 400
    message = "Bad request"


class Unauthorized(ServiceError):
    status = 401
    message = "Authentication required: use HTTP Basic with your AccountSid and AuthToken"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Basic realm="Recordings"'})


class Forbidden(ServiceError):
    status = 403
    message = "These credentials may not access this account"


class NotFound(ServiceError):
    status = 404
    message = "The requested resource was not found"


class MethodNotAllowed(ServiceError):
    status = 405
    message = "Method not allowed"

    def __init__(self, allow: list[str], message: str | None = None) -> None:
        super().__init__(message, headers={"Allow": ", ".join(allow)})


class PreconditionFailed(ServiceError):
    status = 412
    message = "Precondition failed"


class PayloadTooLarge(ServiceError):
    status = 413
    message = "The uploaded file is too large"


class UnsupportedMediaType(ServiceError):
    status = 415
    message = "Unsupported media type"


class RangeNotSatisfiable(ServiceError):
    status = 416
    message = "Requested range not satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(headers={"Content-Range": f"bytes */{size}"})


class UnprocessableAudio(ServiceError):
    status = 422
    message = "The audio could not be processed"


class BadGateway(ServiceError):
    status = 502
    message = "A backing service failed"


class ServiceUnavailable(ServiceError):
    status = 503
    message = "The service is temporarily unavailable; try again shortly"

    def __init__(self, message: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
