"""Input that once gave a 500 (found by schemathesis) is a 400 with a clear error; chunked
request bodies are read, with the same size limit."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import falcon.testing
import pytest
from support.server import Server

from appliance import errors
from appliance.api.requests import query_bool
from appliance.runtime import Runtime

MALFORMED_URLS = [
    ("http://[::1", "Invalid IPv6 URL"),
    ("https://[zz]/", "does not appear to be an IPv4 or IPv6 address"),
    ("http://host:99999/x", "Port out of range"),
    ("http://host:port/x", "Port could not be cast"),
]


@pytest.fixture
def console_client(app_with: Callable[..., tuple[Runtime, falcon.testing.TestClient]]
                   ) -> falcon.testing.TestClient:
    return app_with(YTP_CONSOLE_ENABLED="true")[1]


def _calls(url: str) -> Iterator[tuple[str, str, dict[str, Any] | None]]:
    """Every endpoint that takes a URL: (method, path, JSON body)."""
    yield "POST", "/api/history", {"url": url}
    yield "GET", f"/api/history/add?url={url}", None
    yield "GET", f"/api/thumbnail?url={url}", None
    yield "GET", f"/api/yt-dlp/url/info?url={url}", None
    yield "POST", "/api/yt-dlp/command", {"url": url}
    yield "POST", "/api/downloads", {"url": url}
    yield "POST", "/api/conditions/test", {"url": url, "condition": "title"}
    yield "POST", "/api/notifications", {"name": "hook", "request": {"url": url}}


@pytest.mark.parametrize(("url", "reason"), MALFORMED_URLS)
def test_malformed_url_is_a_400_everywhere(
        console_client: falcon.testing.TestClient, url: str, reason: str) -> None:
    for method, path, body in _calls(url):
        if body is None:
            response = console_client.simulate_request(method, path)
        else:
            response = console_client.simulate_request(method, path, json=body)
        assert response.status_code == 400, (path, response.text)
        if path.startswith("/api/history/add"):  # YTPTube's quick add: its own shape too
            assert response.json["status"] is False and reason in response.json["message"]
        assert response.json["code"] == "INVALID_REQUEST", (path, response.text)
        assert "not a valid URL" in response.json["error"], (path, response.text)
        assert reason in response.json["error"], (path, response.text)


def test_logs_offset_past_any_log_is_a_400(client: falcon.testing.TestClient) -> None:
    for offset in ("99999999999999999999999", str(2**31)):
        response = client.simulate_get("/api/logs", params={"offset": offset})
        assert response.status_code == 400, response.text
        assert response.json == {"error": "offset must be between 0 and 2147483647.",
                                 "code": "INVALID_REQUEST"}
    far = client.simulate_get("/api/logs", params={"offset": str(2**31 - 1)})
    assert far.status_code == 200 and far.json["logs"] == [] and far.json["end_is_reached"]


# --- chunked bodies through the real gunicorn -----------------------------------------------


def _chunked_post(server: Server, path: str, body: bytes, piece: int = 1000) -> tuple[int, Any]:
    """POST ``body`` with Transfer-Encoding: chunked over a plain socket; (status, JSON)."""
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i:i + piece]), body[i:i + piece])
        for i in range(0, len(body), piece)
    )
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + chunks + b"0\r\n\r\n")
        answer = b""
        while data := sock.recv(65536):
            answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload)


@pytest.mark.e2e
def test_chunked_bodies_are_read_with_the_same_limit(
        make_server: Callable[..., Server]) -> None:
    limit = 64 * 1024
    server = make_server(YTP_MAX_BODY=str(limit))
    condition = {"name": "chunked", "filter": "title ~= '(?i)live'",
                 "description": "x" * 20_000}  # many chunks
    status, created = _chunked_post(server, "/api/conditions", json.dumps(condition).encode())
    assert status == 200, created
    assert created["name"] == "chunked" and len(created["description"]) == 20_000
    assert server.get(f"/api/conditions/{created['id']}").json()["filter"] == condition[
        "filter"]

    over = json.dumps({**condition, "name": "big", "description": "x" * limit}).encode()
    status, refused = _chunked_post(server, "/api/conditions", over, piece=8192)
    assert status == 413, refused
    assert refused["code"] == "PAYLOAD_TOO_LARGE" and str(limit) in refused["error"]
    names = [c["name"] for c in server.get("/api/conditions").json()["items"]]
    assert "big" not in names
    assert server.get("/api/ping").status_code == 200  # the worker is fine afterwards


def _chunked_in_process(app: Any, body: bytes, terminated: bool = True,
                        content_type: str = "application/json") -> falcon.testing.Result:
    """POST /api/history with a chunked body as gunicorn hands it over: de-chunked, no
    Content-Length, ended by the server (``wsgi.input_terminated``)."""
    environ = falcon.testing.create_environ(
        path="/api/history", method="POST", body=body,
        headers={"Content-Type": content_type, "Transfer-Encoding": "chunked"})
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = terminated
    start = falcon.testing.StartResponseMock()
    answer = app(environ, start)
    return falcon.testing.Result(answer, start.status, start.headers)


def test_chunked_bodies_in_process(
        app_with: Callable[..., tuple[Runtime, falcon.testing.TestClient]]) -> None:
    """The same limit on a chunked body in process (mutmut judges only code run here)."""
    limit = 64 * 1024
    _, client = app_with(YTP_MAX_BODY=str(limit))
    app = client.app
    item = {"url": "http://127.0.0.1:9/v", "auto_start": False, "extras": {"x": "y" * 20_000}}
    added = _chunked_in_process(app, json.dumps(item).encode())
    assert added.status_code == 200, added.text
    assert added.json[0]["url"] == item["url"]
    over = {**item, "extras": {"x": "y" * limit}}
    refused = _chunked_in_process(app, json.dumps(over).encode())
    assert refused.status_code == 413, refused.text
    assert refused.json == {"error": f"Request body is over the limit of {limit} bytes.",
                            "code": "PAYLOAD_TOO_LARGE"}
    # a chunked body the server does not end itself is not read (nothing bounds it)
    unread = _chunked_in_process(app, json.dumps(item).encode(), terminated=False)
    assert unread.status_code == 400
    assert unread.json["error"] == "A JSON request body is required."
    # a chunked body is a body: not JSON by its type, refused as one with a length is
    for kind in ("text/plain", ""):
        plain = _chunked_in_process(app, json.dumps(item).encode(), content_type=kind)
        assert plain.status_code == 415, (kind, plain.text)
        assert plain.json["code"] == "UNSUPPORTED_MEDIA_TYPE"


def _nested(depth: int) -> str:
    """JSON text of ``depth`` arrays and objects in turn, nested (json.dumps cannot write it)."""
    opening = "".join('{"a":' if level % 2 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 else "]" for level in reversed(range(depth)))
    return opening + '"x"' + closing


@pytest.mark.parametrize(("path", "body"), [
    ("/api/tasks", '{"name": "t", "url": "http://127.0.0.1:9/f.rss", "config": DEEP}'),
    ("/api/conditions", '{"name": "c", "filter": "title", "extras": DEEP}'),
    ("/api/tasks/definitions", '{"name": "d", "definition": {"match_url": '
     '["https://example.invalid/*"], "request": {"body": DEEP}, "parse": {"items": {'
     '"type": "css", "expression": "li", "fields": {"url": {"type": "css", '
     '"expression": "a::attr(href)"}}}}}}'),
    ("/api/history", '{"url": "http://127.0.0.1:9/v", "extras": DEEP}'),
    ("/api/yt-dlp/archive_id", "DEEP"),
])
def test_json_nested_too_deep_is_a_400(client: falcon.testing.TestClient, path: str,
                                       body: str) -> None:
    """Bodies of 255-1024 levels passed the parser, then broke what encodes them again
    (orjson, pony's JSON columns, the recursion limit): a 500 each, one with an empty body."""
    for depth in (65, 300, 600, 1000):
        result = client.simulate_post(path, body=body.replace("DEEP", _nested(depth)),
                                      headers={"Content-Type": "application/json"})
        assert result.status_code == 400, (depth, result.text[:200])
        assert "more than 64 levels deep" in result.json["error"]
    shallow = client.simulate_post(path, body=body.replace("DEEP", _nested(20)),
                                   headers={"Content-Type": "application/json"})
    assert shallow.status_code < 500 and "levels deep" not in shallow.text


@pytest.mark.parametrize(("text", "value"), [
    *((t, True) for t in ("1", "true", "yes", "on", " TRUE ", "On")),
    *((t, False) for t in ("0", "false", "no", "off", "", "NO", " Off ")),
])
def test_a_query_flag_reads_the_usual_words(text: str, value: bool) -> None:
    req = falcon.testing.create_req(query_string=f"flag={quote(text)}")
    assert query_bool(req, "flag") is value
    assert query_bool(falcon.testing.create_req(), "flag", default=value) is value


@pytest.mark.parametrize("text", ["2", "maybe", "tru", "yes please"])
def test_a_query_flag_that_is_no_word_is_a_400(text: str) -> None:
    req = falcon.testing.create_req(query_string=f"flag={quote(text)}")
    with pytest.raises(errors.AppError) as refused:
        query_bool(req, "flag")
    assert refused.value.status == 400 and refused.value.message == "flag must be true or false."


def test_a_folder_the_kernel_would_refuse_is_refused_on_add(
    app_with: Callable[..., tuple[Runtime, falcon.testing.TestClient]], tmp_path: Any
) -> None:
    """Linux's PATH_MAX (4096) counts the NUL after a path: one of exactly 4096 bytes is
    ENAMETOOLONG at the first write, so it is refused when added, as one byte more is."""
    import errno
    import os

    rt, client = app_with()
    root = str(rt.settings.download_path)

    def folder(total: int) -> str:
        names, left = [], total - len(root) - 1
        while left > 200:
            names.append("n" * 199)
            left -= 200
        return "/".join([*names, "m" * left])

    for total, refused in ((4095, False), (4096, True)):
        path = f"{root}/{folder(total)}"
        assert len(path.encode()) == total
        try:
            os.stat(path)
        except OSError as exc:  # what the kernel says of such a path
            assert (exc.errno == errno.ENAMETOOLONG) is refused, exc
        answer = client.simulate_post("/api/history", json={
            "url": "http://x.invalid/", "folder": folder(total), "auto_start": False})
        assert (answer.status_code == 400) is refused, answer.text
        if refused:
            assert "is longer than 4095 bytes: no file could be written there" in \
                answer.json["error"]


def test_what_no_input_should_cause_is_a_500_in_the_same_shape_and_logged(
        runtime: Runtime, client: falcon.testing.TestClient, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug (stood for here by a store that raises what no error type says) is a 500 whose
    body has the API's shape and the request id the log names it by; never a traceback."""

    def broken(kind: str) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(runtime.store, "count", broken)
    answer = client.simulate_get("/api/history/live", headers={"X-Request-ID": "probe42"})
    assert answer.status_code == 500
    assert answer.json == {
        "error": "Internal error; the log has the details under request id probe42.",
        "code": "INTERNAL_ERROR", "request_id": "probe42"}
    assert answer.headers["x-request-id"] == "probe42" and "a bug" not in answer.text
    [logged] = [r for r in caplog.records if r.name == "appliance.api.errors"]
    assert logged.getMessage() == (
        "unhandled error on GET /api/history/live (request probe42)")
    assert logged.exc_info is not None and logged.exc_info[0] is RuntimeError
