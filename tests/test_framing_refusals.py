"""Framing gunicorn refuses is refused by the HTTP worker's poller too, with the API's JSON
400, at once, on a real server over a raw socket.

A chunk size Python's int() reads and gunicorn does not (``0x5``, ``+5``, blanks), a chunk
extension or a trailer field gunicorn refuses: the poller took the body as whole and gunicorn
raised from inside the API's read of it, a 500. A head whose lines end with LF alone: gunicorn
refuses it without waiting for more, and the poller waited for a CRLF CRLF that never comes,
a 408 ten seconds later for a head that was all there.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.server import Server

from appliance.http_worker import HEAD_TIMEOUT

pytestmark = pytest.mark.e2e

POST = (b"POST /api/history HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")
BODY = b'{"url": "https://example.invalid/framing", "auto_start": false}'
CHUNK = b"%x\r\n%s\r\n" % (len(BODY), BODY)
MALFORMED = "The request could not be read: its chunked body is malformed ({})."
NOT_HEX = MALFORMED.format("a chunk size line is not a hexadecimal size ending with CRLF")
BAD_EXTENSION = MALFORMED.format(
    "a chunk extension is not name=value pairs of tokens or quoted text")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("framing-refusals")
    running = Server(root).start()
    yield running
    if running.proc is not None:
        running.stop()


def answer_to(server: Server, data: bytes) -> tuple[int, Any]:
    """The status and JSON body of the one answer to ``data``; the server closes after it
    (a socket read waiting past the head's deadline fails the test)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=HEAD_TIMEOUT) as sock:
        sock.sendall(data)
        received = b""
        while piece := sock.recv(65536):
            received += piece
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.count(b"HTTP/1.1 ") == 1, received[:500]
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(("body", "error"), [
    (b"0x%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY), NOT_HEX),
    (b"+%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY), NOT_HEX),
    (b" %x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY), NOT_HEX),
    (b"%x \r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY), NOT_HEX),  # blanks before ";" only
    (b"%x\r\n%s\r\n0 \r\n\r\n" % (len(BODY), BODY), NOT_HEX),
    (b"%x;a b\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY), BAD_EXTENSION),
    (b"%x;a\rb\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY), BAD_EXTENSION),
    (CHUNK + b"0;\x01\r\n\r\n", BAD_EXTENSION),
    (CHUNK + b"0\r\nX-Sum 1\r\n\r\n", MALFORMED.format(
        "a trailer field is malformed (InvalidHeader)")),
    (CHUNK + b"0\r\nContent-Length: 5\r\n\r\n", MALFORMED.format(
        "a trailer field is malformed (InvalidHeaderName)")),
    (CHUNK + b"0\r\nX-Sum: 1\nX-Other: 2\r\n\r\n", MALFORMED.format(
        "a trailer line ends with LF alone, not CRLF")),
    (CHUNK + b"0\r\nX-Sum: 1\n", MALFORMED.format(  # and its blank line never comes
        "a trailer line ends with LF alone, not CRLF")),
], ids=["0x", "plus", "blank-before", "blank-after", "blank-after-last", "extension-blank",
        "extension-cr", "extension-control", "trailer-no-colon", "trailer-forbidden",
        "trailer-lf", "trailer-lf-unended"])
def test_a_chunked_body_gunicorn_refuses_is_a_400_not_a_500(
        server: Server, body: bytes, error: str) -> None:
    assert answer_to(server, POST + body) == (400, {"error": error, "code": "INVALID_REQUEST"})
    assert requests.get(server.url + "/api/ping", timeout=HEAD_TIMEOUT).ok
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(("head", "error"), [
    (b"GET /api/ping HTTP/1.1\nHost: x\n\n", "Invalid HTTP request line: 'bare LF as line "
     "terminator'"),
    (b"GET /api/ping HTTP/1.1\r\nHost: x\n\n", "Invalid HTTP Header: 'bare LF as line "
     "terminator'"),
    (b"GET /api/ping HTTP/1.1\r\nHost: x\n", "Invalid HTTP Header: 'bare LF as line "
     "terminator'"),
], ids=["request-line", "field", "field-unended"])
def test_a_head_of_lines_ending_with_lf_alone_is_refused_at_once(
        server: Server, head: bytes, error: str) -> None:
    assert answer_to(server, head) == (
        400, {"error": f"The request could not be read: {error}.", "code": "INVALID_REQUEST"})


def test_what_gunicorn_takes_is_still_taken(server: Server) -> None:
    """Blanks before an extension, quoted extensions, trailer fields: a body like any other."""
    body = (b"%x \t;name=value;q=\"a \\\" b\"\r\n%s\r\n0\r\nX-Sum: 1\r\n\r\n"
            % (len(BODY), BODY))
    status, added = answer_to(server, POST.replace(b"\r\n\r\n", b"\r\nConnection: close"
                                                               b"\r\n\r\n") + body)
    assert status == 200, added
    assert [(a["status"], a["url"]) for a in added] == [
        ("queued", "https://example.invalid/framing")]
