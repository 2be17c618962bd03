"""System endpoints: the yt-dlp terminal (SSE, real yt-dlp), shutdown, check-updates against a
local HTTP server, dev diagnostics, bundled docs and the random background."""

from __future__ import annotations

import http.server
import json
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon
import falcon.testing
import pytest
import requests
import yt_dlp.version
from conftest import client_of_module, make_settings, started
from support.option_tables import keep_option_table
from support.origin import MediaOrigin
from support.server import Server, free_port_pair, wait_for
from support.sse import SseClient, data

from appliance import __version__
from appliance.api import console
from appliance.api.app import create_app
from appliance.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., falcon.testing.TestClient]]:
    runtimes: list[Runtime] = []

    def make(**env: str) -> falcon.testing.TestClient:
        runtime = started(make_settings(tmp_path / f"rt{len(runtimes)}", **env))
        runtimes.append(runtime)
        client = falcon.testing.TestClient(create_app(runtime))
        client.runtime = runtime  # type: ignore[attr-defined]
        return client

    yield make
    for runtime in runtimes:
        runtime.stop()


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[falcon.testing.TestClient]:
    yield from client_of_module(tmp_path_factory, "refusing", YTP_CONSOLE_ENABLED="true")


def _events(body: str) -> list[tuple[str, Any]]:
    """(event, data) of a complete SSE body; comments and retry lines skipped."""
    events = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if line.startswith(("event: ", "data: ")))
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


class HangingServer:
    """Accepts TCP connections and never answers: a URL that keeps yt-dlp waiting."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.settimeout(0.2)
            self.connections.append(conn)

    def closed_by_peer(self) -> bool:
        """Whether every accepted connection was closed by the client (its process died)."""
        if not self.connections:
            return False
        for conn in self.connections:
            try:
                while conn.recv(65536):
                    pass  # the request yt-dlp sent
            except TimeoutError:
                return False
            except OSError:
                pass
        return True

    def close(self) -> None:
        self.listener.close()
        for conn in self.connections:
            conn.close()


# --- terminal ----------------------------------------------------------------------------


def test_terminal_is_forbidden_unless_enabled(client: falcon.testing.TestClient) -> None:
    response = client.simulate_post("/api/system/terminal", json={"command": "--version"})
    assert response.status_code == 403
    assert response.json == {"error": "Console feature is disabled.", "code": "FORBIDDEN"}


@pytest.mark.parametrize("body", [
    {}, {"command": ""}, {"command": "   "}, {"command": 5}, {"command": ["--version"]},
    {"command": "--format 'best"},
])
def test_terminal_refuses_bad_commands(
    refusing: falcon.testing.TestClient, body: dict[str, Any]
) -> None:
    response = refusing.simulate_post("/api/system/terminal", json=body)
    assert response.status_code == 400
    assert response.json["code"] == "INVALID_REQUEST"
    assert "command" in response.json["error"]


@pytest.mark.parametrize(("command", "refused"), [
    ("--exec 'touch /tmp/x' URL", ["--exec"]),
    ("--exe=ls --config-locations /etc/yt-dlp.conf", ["--config-locations"]),
    ("-xP/tmp URL", ["--paths"]),
    ("-o /etc/%(title)s.%(ext)s URL", ["--output"]),
    ("--output=../../%(title)s URL", ["--output"]),
    ("-a urls.txt --cookies c.txt", ["--batch-file", "--cookies"]),
    ("--alias get '-f best'", ["--alias"]),
    ("--js-runtimes deno:/bin/sh URL", ["--js-runtimes"]),
    ("yt-dlp --update-to nightly", ["--update-to"]),
])
def test_terminal_refuses_unsafe_options(
    refusing: falcon.testing.TestClient, command: str, refused: list[str]
) -> None:
    response = refusing.simulate_post("/api/system/terminal", json={"command": command})
    assert response.status_code == 400
    assert response.json["blocked_options"] == refused
    assert all(name in response.json["error"] for name in refused)


def test_terminal_runs_yt_dlp_and_streams_both_outputs(
    make_client: Callable[..., falcon.testing.TestClient],
) -> None:
    client = make_client(YTP_CONSOLE_ENABLED="true")
    response = client.simulate_post("/api/system/terminal",
                                    json={"command": "yt-dlp --version"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.text.startswith("retry: 3000\n\n")
    assert _events(response.text) == [
        ("output", {"type": "stdout", "line": yt_dlp.version.__version__}),
        ("close", {"exitcode": 0})]
    failed = _events(client.simulate_post("/api/system/terminal",
                                          json={"command": "--no-such-option"}).text)
    assert failed[-1] == ("close", {"exitcode": 2})
    assert ("output", {"type": "stderr", "line": "contained_cli.py: error: no such option: "
                                                 "--no-such-option"}) in failed
    assert {name for name, _ in failed[:-1]} == {"output"}
    assert client.runtime.streams.taken == 0  # type: ignore[attr-defined]


def test_terminal_output_of_many_lines_arrives_whole_and_in_order(
    make_client: Callable[..., falcon.testing.TestClient],
) -> None:
    """yt-dlp's help comes faster than it is sent: batches of MAX_BATCH lines each."""
    client = make_client(YTP_CONSOLE_ENABLED="true")
    events = _events(client.simulate_post("/api/system/terminal",
                                          json={"command": "yt-dlp --help"}).text)
    assert events[-1] == ("close", {"exitcode": 0})
    lines = [event["line"] for name, event in events[:-1] if event["type"] == "stdout"]
    assert len(lines) > 2 * console.MAX_BATCH
    assert lines[0].startswith("Usage: ") and lines[1] == ""
    stripped = [line.strip() for line in lines]
    assert stripped.index("General Options:") < stripped.index("Network Options:")
    assert any(line.startswith("--version") for line in stripped)
    assert any("See full documentation at" in line for line in lines[-5:]), lines[-5:]


def test_a_line_waiting_for_room_is_dropped_when_the_stream_ends() -> None:
    """A client that stopped reading fills the output queue: the pump thread waits for room,
    and ends once the stream is over (the client left) instead of waiting for good."""
    out: queue.Queue[tuple[str, str | None]] = queue.Queue(1)
    out.put(("stdout", "read by no one"))
    stop = threading.Event()
    put: list[bool] = []
    pump = threading.Thread(target=lambda: put.append(console._put(out, ("stdout", "x"), stop)),
                            daemon=True)
    pump.start()
    wait_for(lambda: out.not_full._waiters, timeout=10,  # type: ignore[attr-defined]
             message="the line to wait for room")
    stop.set()
    pump.join(timeout=10)
    assert put == [False] and out.get_nowait() == ("stdout", "read by no one")


def test_terminal_that_cannot_start_says_why(
    make_client: Callable[..., falcon.testing.TestClient],
) -> None:
    client = make_client(YTP_CONSOLE_ENABLED="true")
    settings = client.runtime.settings  # type: ignore[attr-defined]
    (settings.temp_path / console.CONSOLE_TEMP).write_text("a file where its folder goes")
    response = client.simulate_post("/api/system/terminal", json={"command": "--version"})
    assert response.status_code == 200
    [(name, said), close] = _events(response.text)
    assert (name, said["type"]) == ("output", "stderr")
    assert said["line"].startswith("Cannot start yt-dlp: [Errno 17] File exists")
    assert close == ("close", {"exitcode": -1})
    assert client.runtime.streams.taken == 0  # type: ignore[attr-defined]


def test_terminal_downloads_into_the_download_folder(
    make_client: Callable[..., falcon.testing.TestClient], origin: MediaOrigin,
) -> None:
    client = make_client(YTP_CONSOLE_ENABLED="true")
    settings = client.runtime.settings  # type: ignore[attr-defined]
    response = client.simulate_post("/api/system/terminal", json={
        "command": f"-o 'got %(title)s.%(ext)s' {origin.clip_url}"})
    assert _events(response.text)[-1] == ("close", {"exitcode": 0}), response.text
    assert [p.name for p in settings.download_path.glob("*.mp4")] == ["got clip.mp4"]
    assert not list((settings.temp_path / console.CONSOLE_TEMP).rglob("*.mp4"))


def test_terminal_output_is_split_at_line_ends_and_carriage_returns() -> None:
    read_end, write_end = os.pipe()
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    long = b"x" * (3 * console.MAX_LINE + 7)  # no line end: sent in pieces, none lost

    def write() -> None:
        with open(write_end, "wb") as pipe:
            pipe.write(b"one\r\ntwo\rthree\n\xffbad\n" + long + b"\nlast")

    writer = threading.Thread(target=write)
    writer.start()
    with open(read_end, "rb") as pipe:
        console._pump(pipe, "stderr", lines, threading.Event())
    writer.join()
    got = [lines.get_nowait() for _ in range(lines.qsize())]
    assert got[:4] == [("stderr", "one"), ("stderr", "two"), ("stderr", "three"),
                       ("stderr", "\ufffdbad")]
    assert got[-2:] == [("stderr", "last"), ("stderr", None)]  # the rest, then the end
    pieces = [line for _, line in got[4:-2]]
    assert "".join(pieces) == long.decode() and len(pieces) > 1  # type: ignore[arg-type]
    assert all(console.MAX_LINE < len(p) <= 2 * console.MAX_LINE  # type: ignore[arg-type]
               for p in pieces[:-1])


def test_terminal_time_limit_kills_the_command(
    make_client: Callable[..., falcon.testing.TestClient],
) -> None:
    client = make_client(YTP_CONSOLE_ENABLED="true", YTP_CONSOLE_TIMEOUT="1")
    hanging = HangingServer()
    try:
        response = client.simulate_post("/api/system/terminal", json={
            "command": f"--socket-timeout 600 http://127.0.0.1:{hanging.port}/video"})
        assert response.status_code == 200
        events = _events(response.text)
        assert events[-1] == ("close", {"exitcode": -9})
        assert ("output", {"type": "stderr", "line": "Stopped: the command ran longer than "
                           "1 s (YTP_CONSOLE_TIMEOUT)."}) in events
    finally:
        hanging.close()


@pytest.mark.e2e
def test_terminal_streams_yt_dlp_and_stops_it_when_the_client_leaves(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(YTP_CONSOLE_ENABLED="true")
    response = server.post("/api/system/terminal", {"command": "--version"}, stream=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = [(e["event"], data(e)) for e in SseClient(response).rest()
              if e["event"] != "comment"]
    assert events == [("output", {"type": "stdout", "line": yt_dlp.version.__version__}),
                      ("close", {"exitcode": 0})]

    hanging = HangingServer()
    try:
        response = server.post("/api/system/terminal", {
            "command": f"--socket-timeout 600 http://127.0.0.1:{hanging.port}/video"},
            stream=True)
        assert response.status_code == 200
        wait_for(lambda: hanging.connections, timeout=60, message="yt-dlp to connect")
        assert not hanging.closed_by_peer()  # yt-dlp is waiting for an answer
        response.close()  # the client leaves: the process group is killed
        wait_for(hanging.closed_by_peer, timeout=20, message="yt-dlp to be killed")
    finally:
        hanging.close()
    # Its stream slot is freed (just after the kill): all three can be taken again.
    streams: list[requests.Response] = []

    def take_a_slot() -> bool:
        response = requests.get(server.url + "/api/logs/stream", stream=True, timeout=10)
        if response.status_code != 200:
            response.close()
            return False
        streams.append(response)
        return len(streams) == 3

    try:
        wait_for(take_a_slot, timeout=20, message="three free stream slots")
    finally:
        for stream in streams:
            stream.close()


# --- shutdown, updates -------------------------------------------------------------------


def test_shutdown_is_refused_outside_native_mode(client: falcon.testing.TestClient) -> None:
    response = client.simulate_post("/api/system/shutdown")
    assert response.status_code == 400
    assert response.json["code"] == "INVALID_REQUEST"
    assert "native mode" in response.json["error"]


def test_check_updates_disabled_by_default(client: falcon.testing.TestClient) -> None:
    response = client.simulate_post("/api/system/check-updates")
    assert response.status_code == 400
    assert response.json["status"] == "disabled"
    assert response.json["current_version"] == __version__
    assert response.json["new_version"] is None
    assert response.json["code"] == "INVALID_REQUEST"
    assert "disabled" in response.json["error"]


class ReleaseServer:
    """A stand-in for PyPI's JSON API on 127.0.0.1: answers what ``answer`` says."""

    def __init__(self) -> None:
        self.answer: tuple[int, bytes] = (200, b"{}")
        self.hang = threading.Event()
        self.release = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if owner.hang.is_set():
                    owner.release.wait(30)
                    return
                status, body = owner.answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/pypi/appliance/json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_check_updates_against_a_local_release_server(
    make_client: Callable[..., falcon.testing.TestClient],
) -> None:
    releases = ReleaseServer()
    try:
        client = make_client(YTP_CHECK_FOR_UPDATES="true", YTP_UPDATE_CHECK_URL=releases.url)
        seen: list[Any] = []
        client.runtime.bus.subscribe(seen.append)  # type: ignore[attr-defined]

        def check() -> dict[str, Any]:
            response = client.simulate_post("/api/system/check-updates")
            assert response.status_code == 200, response.text
            assert response.json["current_version"] == __version__
            return response.json

        releases.answer = (200, json.dumps({"info": {"version": "99.0.0"}}).encode())
        result = check()
        assert (result["status"], result["new_version"]) == ("update_available", "99.0.0")
        assert [e.name for e in seen if e.name.startswith("log_")] == ["log_info"]

        releases.answer = (200, json.dumps({"info": {"version": "0.0.1"}}).encode())
        result = check()
        assert (result["status"], result["new_version"]) == ("up_to_date", None)
        assert "error" not in result

        releases.answer = (200, json.dumps({"info": {"version": __version__}}).encode())
        assert check()["status"] == "up_to_date"
        assert len([e for e in seen if e.name == "log_info"]) == 1  # only when newer

        releases.answer = (200, json.dumps({"info": {"version": "the newest"}}).encode())
        result = check()
        assert result["status"] == "error" and result["new_version"] is None
        assert result["error"] == f"Cannot compare versions {__version__!r} and 'the newest'."
        for answer, why in (({"info": {"version": ""}}, "the answer has no info.version"),
                            ({"info": {"version": 3}}, "the answer has no info.version"),
                            ({"info": {}}, "the answer has no info.version"),
                            ([], "the answer has no info.version")):
            releases.answer = (200, json.dumps(answer).encode())
            result = check()
            assert result["status"] == "error", answer
            assert result["error"] == f"Unexpected answer from {releases.url}: {why}.", answer

        releases.answer = (500, b"oops")
        result = check()
        assert result["status"] == "error" and "HTTP 500" in result["error"]

        releases.answer = (200, b"<html>not json</html>")
        result = check()
        assert result["status"] == "error" and "Unexpected answer" in result["error"]

        releases.answer = (200, b" " * (8 * 1024 * 1024 + 1))  # more than any release says
        result = check()
        assert result["status"] == "error" and "too large" in result["error"]

        releases.hang.set()  # accepts, never answers: a short timeout, not a hang
        result = check()
        assert result["status"] == "error"
        assert result["new_version"] is None
        assert result["error"] in (f"Cannot reach {releases.url}: timed out.",
                                   f"No answer from {releases.url} within 3 s.")
    finally:
        releases.close()


def test_check_updates_cannot_reach_the_server(
    make_client: Callable[..., falcon.testing.TestClient],
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again: nothing listens there
    client = make_client(YTP_CHECK_FOR_UPDATES="true",
                         YTP_UPDATE_CHECK_URL=f"http://127.0.0.1:{port}/pypi/appliance/json")
    result = client.simulate_post("/api/system/check-updates").json
    assert result["status"] == "error"
    assert "Cannot reach" in result["error"]


def test_check_updates_from_an_address_that_is_not_http_is_an_error_said_plainly(
    make_client: Callable[..., falcon.testing.TestClient],
) -> None:
    client = make_client(YTP_CHECK_FOR_UPDATES="true", YTP_UPDATE_CHECK_URL="file:///etc/passwd")
    response = client.simulate_post("/api/system/check-updates")
    assert response.status_code == 200
    assert response.json == {
        "status": "error", "current_version": __version__, "new_version": None,
        "error": "YTP_UPDATE_CHECK_URL must be an http(s) URL, not 'file:///etc/passwd'."}


# --- dev ---------------------------------------------------------------------------------


def test_dev_endpoints_are_forbidden_outside_dev_mode(
    client: falcon.testing.TestClient,
) -> None:
    for path in ("/api/dev/loop", "/api/dev/pip"):
        response = client.simulate_get(path)
        assert response.status_code == 403
        assert response.json == {"error": "This endpoint is only available in development "
                                          "mode (YTP_DEV_MODE=true).", "code": "FORBIDDEN"}


def test_dev_pip_and_threads_in_dev_mode(
    make_client: Callable[..., falcon.testing.TestClient],
) -> None:
    client = make_client(YTP_DEV_MODE="true")
    pip = client.simulate_get("/api/dev/pip")
    assert pip.status_code == 200
    assert pip.json["falcon"] == falcon.__version__
    assert pip.json["yt-dlp"] == yt_dlp.version.__version__
    assert pip.json["appliance"] == __version__
    assert all(v is None or isinstance(v, str) for v in pip.json.values())

    loop = client.simulate_get("/api/dev/loop").json
    assert loop["loop"] is None and loop["tasks"] == [] and loop["note"]  # no websocket here
    names = {t["name"] for t in loop["threads"]}
    assert "MainThread" in names
    assert loop["total_threads"] == len(loop["threads"])
    main = next(t for t in loop["threads"] if t["name"] == "MainThread")
    assert any("on_get" in line for line in main["stack"])


def test_dev_loop_reports_the_websocket_loop_in_process(tmp_path: Path) -> None:
    port = free_port_pair()
    settings = make_settings(tmp_path, YTP_DEV_MODE="true", YTP_HOST="127.0.0.1",
                             YTP_PORT=str(port), YTP_ZEROCONF="false")
    keep_option_table(settings.config_path)
    runtime = Runtime(settings)  # with its websocket sidecar, whose loop is the one asked
    runtime.start()
    try:
        body = falcon.testing.TestClient(create_app(runtime)).simulate_get("/api/dev/loop").json
    finally:
        runtime.stop()
    assert body["loop"] and "EventLoop" in body["loop"] and "note" not in body
    assert body["total_tasks"] == len(body["tasks"]) >= 1
    assert all(t["task"].startswith("<Task") for t in body["tasks"])


@pytest.mark.e2e
def test_dev_loop_reports_the_websocket_loop(make_server: Callable[..., Server]) -> None:
    server = make_server(YTP_DEV_MODE="true")
    body = server.get("/api/dev/loop").json()
    assert body["loop"] and "EventLoop" in body["loop"]
    assert body["total_tasks"] == len(body["tasks"]) >= 1
    assert all(isinstance(t["stack"], list) for t in body["tasks"])
    # gunicorn serves requests from threads: this request's thread is among them.
    assert any(any("on_get" in line for line in t["stack"]) for t in body["threads"])
    # Docs over the real server too: gunicorn decodes %2f, the allow-list still holds.
    assert server.get("/api/docs/..%2fpyproject.toml").status_code == 404
    assert server.get("/api/docs/FAQ.md").status_code == 200


# --- docs, background --------------------------------------------------------------------


@pytest.mark.parametrize(("name", "source"), [
    ("README.md", ROOT / "README.md"),
    ("FAQ.md", ROOT / "docs" / "FAQ.md"),
    ("API.md", ROOT / "docs" / "API.md"),
])
def test_docs_serves_the_bundled_documents(
    client: falcon.testing.TestClient, name: str, source: Path
) -> None:
    for path in (f"/api/docs/{name}", f"/{name}"):
        response = client.simulate_get(path)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/markdown; charset=utf-8"
        assert response.headers["Cache-Control"] == "max-age=3600"
        assert response.content == source.read_bytes()


@pytest.mark.parametrize("path", [
    "/api/docs/CHANGELOG.md", "/api/docs/readme.md", "/api/docs/pyproject.toml",
    "/api/docs/..%2fpyproject.toml", "/api/docs/..%2f..%2fappliance%2fconfig.py",
    "/api/docs/%2fetc%2fpasswd", "/api/docs/....%2f%2fetc%2fpasswd", "/api/docs/.",
    "/api/docs/README.md%00.png",
])
def test_docs_refuses_anything_else(refusing: falcon.testing.TestClient, path: str) -> None:
    response = refusing.simulate_get(path)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json["code"] == "NOT_FOUND"
    assert response.json["error"]


def test_random_background_has_no_backend(client: falcon.testing.TestClient) -> None:
    response = client.simulate_get("/api/random/background", params={"force": "true"})
    assert response.status_code == 404
    assert response.json == {"error": "No background image backend is configured.",
                             "code": "NOT_FOUND"}
