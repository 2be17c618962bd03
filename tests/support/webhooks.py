"""A real webhook receiver on 127.0.0.1 (an HTTP server in the test process, so mutmut credits
what a delivery to it runs) and the API steps the notification tests share."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from falcon.testing import TestClient

# What /thumb… serves: the 8-byte PNG signature and a little more (nobody decodes it).
PICTURE = b"\x89PNG\r\n\x1a\n" + b"picture" * 8


@dataclasses.dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = dataclasses.field(default_factory=time.monotonic)  # when it arrived
    status: int | None = None  # what it was answered (None: no answer, or not yet)

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on /hang: expected


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        receiver = self.server.receiver
        hit = Hit(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                  self.rfile.read(length))
        receiver.record(hit)
        if self.path.startswith("/drop") and len(receiver.to(self.path)) == 1:
            self.close_connection = True  # hangs up without an answer, the first time only
            return
        if self.path.startswith("/hang"):
            receiver.released.wait()  # never answers while the test runs (close() releases)
        if self.path.startswith("/endless"):
            self._endless()
            return
        status = 500 if self.path.startswith("/fail") else 400 if self.path.startswith(
            "/bad") else 200
        extra: list[tuple[str, str]] = []
        if self.path.startswith("/status/"):
            path, _, query = self.path.partition("?")
            status = int(path.split("/")[2])
            extra = parse_qsl(query)
        status = receiver.answers.get(self.path, status)
        hit.status = status
        self.send_response(status)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_PUT = _answer

    def _endless(self) -> None:
        """200 and a body that never ends (until the sender hangs up or ``release``)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        self.close_connection = True
        chunk = b"x" * 65536
        try:
            while not self.server.receiver.released.is_set():
                self.wfile.write(chunk)
        except OSError:
            pass  # the sender hung up: what it should do

    def do_GET(self) -> None:
        """/thumb…: a picture (an attachment Apprise fetches); /status/… as for a POST;
        anything else 404."""
        if self.path.startswith("/status/"):
            self._answer()
            return
        self.server.receiver.record(Hit("GET", self.path, dict(self.headers.items()), b""))
        found = self.path.startswith("/thumb")
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "image/png" if found else "text/plain")
        self.send_header("Content-Length", str(len(PICTURE) if found else 0))
        self.end_headers()
        if found:
            self.wfile.write(PICTURE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Receiver:
    """A webhook receiver: records every request; /fail answers 500, /bad 400, /hang never
    (until ``release``), /drop… hangs up on its first request (a connection error for the
    sender) and answers the next ones, /status/CODE?Header=value… answers CODE with those
    headers, /endless a body that never ends, anything else 200; a GET of /thumb… is a
    picture. ``answers`` (path: status) overrides the status of a path, the test's to
    change."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.answers: dict[str, int] = {}
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.receiver = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}{path}"

    def record(self, hit: Hit) -> None:
        with self.lock:
            self.hits.append(hit)

    def to(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()



def post(client: TestClient, path: str, body: Any) -> Any:
    return client.simulate_post(path, body=json.dumps(body),
                                headers={"Content-Type": "application/json"})


def send(client: TestClient, method: str, path: str, body: Any) -> Any:
    return client.simulate_request(method, path, body=json.dumps(body),
                                   headers={"Content-Type": "application/json"})


def target(client: TestClient, name: str, url: str, **fields: Any) -> dict[str, Any]:
    request = {"url": url, **fields.pop("request", {})}
    response = post(client, "/api/notifications", {"name": name, "request": request, **fields})
    assert response.status_code == 200, response.text
    return response.json


def event_of(hit: Hit, key: str = "data") -> dict[str, Any]:
    if hit.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return json.loads(hit.form()[key][0])
    return hit.json()[key]
