"""The one error family: a distinct status per class, the headers each class says it sends, and
routing's own statuses mapped onto the family."""

from __future__ import annotations

import pytest

from service import errors
from service.errors import (
    ERRORS,
    BadRequest,
    HeadersTooLarge,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    ServiceError,
    TooManyRequests,
    Unauthorized,
    UnprocessableAudio,
    error_for_status,
)


def instance(cls: type[ServiceError]) -> ServiceError:
    """An error of ``cls``, given what its constructor needs."""
    if issubclass(cls, MethodNotAllowed):
        return cls(["GET", "HEAD"])
    if issubclass(cls, RangeNotSatisfiable):
        return cls(1000)
    return cls()


def test_every_class_in_errors_has_a_distinct_status() -> None:
    statuses = [cls.status for cls in ERRORS]
    assert len(set(statuses)) == len(ERRORS), statuses
    assert all(400 <= status < 600 for status in statuses)
    assert len({cls.code for cls in ERRORS}) == len(ERRORS)


def test_every_error_class_is_in_errors_or_refines_one() -> None:
    family = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, ServiceError) and value is not ServiceError
    ]
    assert set(ERRORS) <= set(family)
    for cls in family:
        (listed,) = [e for e in ERRORS if e.status == cls.status]
        assert issubclass(cls, listed), f"{cls.__name__} has {listed.__name__}'s status"


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_error_for_status_finds_each_class(cls: type[ServiceError]) -> None:
    assert error_for_status(cls.status) is cls


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (404, NotFound),
        (405, MethodNotAllowed),
        (413, PayloadTooLarge),
        (422, UnprocessableAudio),
        (431, HeadersTooLarge),
        (418, BadRequest),  # a client error the family has no class for
        (429, TooManyRequests),
        (500, InternalError),
        (504, InternalError),
        (599, InternalError),
    ],
)
def test_routing_statuses(status: int, cls: type[ServiceError]) -> None:
    assert error_for_status(status) is cls


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_each_error_sends_the_headers_it_declares(cls: type[ServiceError]) -> None:
    error = instance(cls)
    assert set(error.headers) == set(cls.headers_sent)
    assert error.message == cls.message == str(error)


def test_header_values() -> None:
    assert Unauthorized().headers == {"WWW-Authenticate": 'Basic realm="Recordings"'}
    assert errors.TokenRequired().headers["WWW-Authenticate"].startswith("Bearer ")
    assert MethodNotAllowed(["GET", "DELETE"]).headers == {"Allow": "GET, DELETE"}
    assert RangeNotSatisfiable(1234).headers == {"Content-Range": "bytes */1234"}
    assert errors.ServiceUnavailable(retry_after=7).headers == {"Retry-After": "7"}


def test_a_message_given_replaces_the_default() -> None:
    error = NotFound("Unknown AccountSid")
    assert (error.message, str(error), error.status) == (
        "Unknown AccountSid",
        "Unknown AccountSid",
        404,
    )
    assert NotFound().message == NotFound.message
