"""The service's one error family: each class carries its status, Twilio code and message.

Every face renders these (the 2008 face as a RestException, the 2010 face as Twilio's JSON
error), and the OpenAPI tables are built from the same classes.
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """An error with the HTTP status, Twilio error code and message a client sees."""

    status: ClassVar[int] = 500
    # Twilio's code where Twilio has one for the case, else 20000 + status as its 204xx and
    # 205xx codes are built.
    code: ClassVar[int] = 20500
    message: str = "Internal server error"
    # The headers every answer of this class carries (the OpenAPI tables list them).
    headers_sent: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.headers = headers or {}


class BadRequest(ServiceError):
    status = 400
    code = 20001
    message = "Bad request"


class RecordingEncrypted(BadRequest):
    """What an encrypted recording cannot be made into (an MP3, a waveform): Twilio's code."""

    code = 16109
    message = (
        "The recording is encrypted: only its encrypted media (.wav) is served, for the holder"
        " of the private key to decrypt"
    )


class Unauthorized(ServiceError):
    status = 401
    code = 20003
    message = "Authentication required: use HTTP Basic with your AccountSid and AuthToken"
    challenge = 'Basic realm="Recordings"'
    headers_sent = ("WWW-Authenticate",)

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": self.challenge})


class TokenRequired(Unauthorized):
    """The ingest route's credentials: a bearer token, not an account's Basic ones."""

    message = "A valid ingest token is required (Authorization: Bearer ...)"
    challenge = 'Bearer realm="Recordings ingest"'


class Forbidden(ServiceError):
    status = 403
    code = 20403
    message = "These credentials may not access this account"


class NotFound(ServiceError):
    status = 404
    code = 20404
    message = "The requested resource was not found"


class MethodNotAllowed(ServiceError):
    status = 405
    code = 20004
    message = "Method not allowed"
    headers_sent = ("Allow",)

    def __init__(self, allow: list[str], message: str | None = None) -> None:
        super().__init__(message, headers={"Allow": ", ".join(allow)})


class Conflict(ServiceError):
    status = 409
    code = 20409
    message = "The request conflicts with an earlier one"


class PreconditionFailed(ServiceError):
    status = 412
    code = 20412
    message = "Precondition failed"


class PayloadTooLarge(ServiceError):
    status = 413
    code = 20413
    message = "The uploaded file is too large"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = 20415
    message = "Unsupported media type"


class RangeNotSatisfiable(ServiceError):
    status = 416
    code = 20416
    message = "Requested range not satisfiable"
    headers_sent = ("Content-Range",)

    def __init__(self, size: int) -> None:
        super().__init__(headers={"Content-Range": f"bytes */{size}"})


class UnprocessableAudio(ServiceError):
    status = 422
    code = 20422
    message = "The audio could not be processed"


class TooManyRequests(ServiceError):
    """One client asks for more than its share: it should pace itself, the service is fine
    (a 503 would tell its retry logic that the service is down)."""

    status = 429
    code = 20429
    message = "Too many requests; try again shortly"
    headers_sent = ("Retry-After",)

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class HeadersTooLarge(ServiceError):
    status = 431
    code = 20431
    message = "The request's headers are too large"


class InternalError(ServiceError):
    """Anything unexpected: the client sees this and the request id, the log the traceback."""

    message = "Internal server error"


class BadGateway(ServiceError):
    status = 502
    code = 20502
    message = "A backing service failed"


class MediaMissing(BadGateway):
    message = "The recording's audio is missing from storage"


class ServiceUnavailable(ServiceError):
    status = 503
    code = 20503
    message = "The service is temporarily unavailable; try again shortly"
    headers_sent = ("Retry-After",)

    def __init__(self, message: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class InsufficientStorage(ServiceUnavailable):
    """The service's own temporary disk is full: not a backing service, and not the client."""

    status = 507
    code = 20507
    message = "The server is out of temporary disk space; try again later"


ERRORS: tuple[type[ServiceError], ...] = (
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    RangeNotSatisfiable,
    UnprocessableAudio,
    TooManyRequests,
    HeadersTooLarge,
    InternalError,
    BadGateway,
    ServiceUnavailable,
    InsufficientStorage,
)


def error_for_status(status: int) -> type[ServiceError]:
    """The family's class for an HTTP status (routing's own 404s and 405s, say)."""
    for error in ERRORS:
        if error.status == status:
            return error
    return InternalError if status >= 500 else BadRequest
