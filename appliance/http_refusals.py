"""What the HTTP worker answers a request gunicorn's parser refused: the API's JSON error body
(``errors.AppError``), not gunicorn's HTML page, with the client's bytes it quotes escaped."""

from __future__ import annotations

import http
import json

from gunicorn.http.errors import (
    ConfigurationProblem,
    ExpectationFailed,
    ForbiddenProxyRequest,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
    UnsupportedTransferCoding,
)

from . import errors

# What gunicorn's parser refuses, by the code it is answered with (any other: 400).
PARSE_REFUSALS = (
    (LimitRequestLine, errors.URI_TOO_LONG),
    (LimitRequestHeaders, errors.HEADERS_TOO_LARGE),
    (ExpectationFailed, errors.EXPECTATION_FAILED),
    (UnsupportedTransferCoding, errors.NOT_IMPLEMENTED),
    (ForbiddenProxyRequest, errors.FORBIDDEN),
)
# The parser's errors that are this server's fault, not the request's: gunicorn's 500.
SERVER_FAULTS = (InvalidResponseHeader, InvalidResponseHeaderName, ConfigurationProblem)
# The part of a refused request's text (its request line, a header) the answer repeats.
REFUSAL_QUOTE = 200


def error_response(error: errors.AppError) -> bytes:
    """A whole HTTP answer carrying ``error``'s body; the connection closes after it."""
    body = json.dumps(error.body()).encode()
    head = (f"HTTP/1.1 {error.status} {http.HTTPStatus(error.status).phrase}\r\n"
            "Connection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def parse_refusal(exc: BaseException) -> errors.AppError | None:
    """What answers a request gunicorn's parser refused; None: not the request's fault."""
    if not isinstance(exc, ParseException) or isinstance(exc, SERVER_FAULTS):
        return None
    code = next((code for kind, code in PARSE_REFUSALS if isinstance(exc, kind)),
                errors.INVALID_REQUEST)
    # The client's own bytes: shown escaped, never as terminal controls in a log or a chat.
    detail = "".join(c if c.isprintable() else f"\\x{ord(c):02x}"
                     for c in str(exc)[:REFUSAL_QUOTE]) or type(exc).__name__
    return errors.AppError(f"The request could not be read: {detail}.", code)
