"""The one error type. Raised anywhere below the API; the API turns it into
``{"error": "<human text>", "code": "<MACHINE_CODE>"}`` with the status its code maps to."""

from __future__ import annotations

from typing import Any

INVALID_REQUEST = "INVALID_REQUEST"
UNAUTHORIZED = "UNAUTHORIZED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
CONFLICT = "CONFLICT"
# A request names a host this service does not answer to (auth.hosts: DNS rebinding).
MISDIRECTED = "MISDIRECTED_REQUEST"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"
RANGE_NOT_SATISFIABLE = "RANGE_NOT_SATISFIABLE"
# Refusals of the HTTP server itself, before the API sees the request (http_worker).
URI_TOO_LONG = "URI_TOO_LONG"
HEADERS_TOO_LARGE = "HEADERS_TOO_LARGE"
EXPECTATION_FAILED = "EXPECTATION_FAILED"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
DOWNLOAD_ERROR = "DOWNLOAD_ERROR"
# A user's regular expression ran out of its time bound (appliance.patterns).
REGEX_TIMEOUT = "REGEX_TIMEOUT"
DATABASE_ERROR = "DATABASE_ERROR"
# The disk under the database is full (store.database.StorageFailure).
INSUFFICIENT_STORAGE = "INSUFFICIENT_STORAGE"
UNAVAILABLE = "UNAVAILABLE"
# A server this one fetched from (a remote thumbnail) failed or sent something unusable.
UPSTREAM_ERROR = "UPSTREAM_ERROR"
INTERNAL_ERROR = "INTERNAL_ERROR"

STATUS_BY_CODE = {
    INVALID_REQUEST: 400,
    UNAUTHORIZED: 401,
    FORBIDDEN: 403,
    NOT_FOUND: 404,
    METHOD_NOT_ALLOWED: 405,
    NOT_ACCEPTABLE: 406,
    REQUEST_TIMEOUT: 408,
    CONFLICT: 409,
    MISDIRECTED: 421,
    PAYLOAD_TOO_LARGE: 413,
    UNSUPPORTED_MEDIA_TYPE: 415,
    TOO_MANY_REQUESTS: 429,
    RANGE_NOT_SATISFIABLE: 416,
    URI_TOO_LONG: 414,
    HEADERS_TOO_LARGE: 431,
    EXPECTATION_FAILED: 417,
    NOT_IMPLEMENTED: 501,
    DOWNLOAD_ERROR: 400,
    REGEX_TIMEOUT: 400,
    UNAVAILABLE: 503,
    UPSTREAM_ERROR: 502,
    DATABASE_ERROR: 500,
    INSUFFICIENT_STORAGE: 507,
    INTERNAL_ERROR: 500,
}


class AppError(Exception):
    def __init__(
        self, message: str, code: str = INVALID_REQUEST, *,
        headers: dict[str, str] | None = None, **extra: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra
        # Response headers the error needs (WWW-Authenticate on 401, Retry-After on 429).
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return STATUS_BY_CODE.get(self.code, 400)

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, **self.extra}


def invalid(message: str, **extra: Any) -> AppError:
    return AppError(message, INVALID_REQUEST, **extra)


def not_found(message: str = "Item not found.") -> AppError:
    return AppError(message, NOT_FOUND)
