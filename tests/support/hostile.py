"""A hostile service on 127.0.0.1, in the test process: an HTTP API that answers what a test
sets per path (junk, wrong types, huge or trickled bodies) and a ``/ws`` websocket that sends
the frames a test sets. What a compromised service, a proxy in between or another version
could send, which the real service never does."""

from __future__ import annotations

import contextlib
import gzip
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

# What a sound service says, which the tests then spoil one part of.
HEALTH = {"download_folder": "ok", "download_path_free_bytes": 10 * 2**30}
LIVE = {"history_count": 0, "queue": {}}
HISTORY = {"items": [], "pagination": {"page": 1, "total": 0, "total_pages": 1,
                                       "has_next": False}}


class Trickle:
    """A 200 whose body comes a byte every ``every`` seconds, ``size`` bytes."""

    def __init__(self, size: int, every: float) -> None:
        self.size, self.every = size, every


class Held:
    """``answer`` (any form above), sent once ``released`` is set: what a client shows while
    it waits is then a test's to check, not a race with the answer."""

    def __init__(self, answer: Any) -> None:
        self.answer, self.released = answer, threading.Event()


class Stream:
    """A 200 ``text/event-stream`` of ``body``, ended by closing the connection; ``held``:
    kept open after it, with pings, until the client goes (counted in ``streams_left``)."""

    def __init__(self, body: bytes, held: bool = False) -> None:
        self.body, self.held = body, held


class Redirect:
    """A 302 to ``location`` (a login page of a proxy in front, say), with an empty body."""

    def __init__(self, location: str) -> None:
        self.location = location


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    service: HostileService

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a trickle: expected


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        sent = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        self.server.service.asked.append(f"{self.command} {path}")
        self.server.service.queries.append(query)
        self.server.service.authorizations.add(self.headers.get("Authorization"))
        if sent:
            self.server.service.sent.append((f"{self.command} {path}", json.loads(sent)))
        answers = self.server.service.answers
        answer = answers.get(f"{self.command} {path}",
                             answers.get(path, (404, {"error": "Not found."})))
        if isinstance(answer, Held):
            answer.released.wait(120)
            answer = answer.answer
        if callable(answer):
            answer = answer(query)
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        if isinstance(body, Trickle):
            self._trickle(body)
            return
        if isinstance(body, Redirect):
            self.send_response(302)
            self.send_header("Location", body.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if isinstance(body, Stream) and body.held:
            self._held_stream(body.body)
            return
        if isinstance(body, Stream):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body.body)
            self.close_connection = True
            return
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if self.server.service.compress and "gzip" in self.headers.get("Accept-Encoding", ""):
            raw = gzip.compress(raw)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def _held_stream(self, body: bytes) -> None:
        """As the service streams: HTTP/1.1, chunked, a ping comment a second, until the
        client closes or shuts its socket down (never its read timeout), or ``streams_end``
        is set (a test that failed ends them: a client reading one holds its app's exit)."""
        self.protocol_version = "HTTP/1.1"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        service = self.server.service
        service.streams_open += 1
        try:
            with contextlib.suppress(OSError):  # a reset: the client closed with data unread
                self._chunk(body)
                while not service.streams_end.is_set():
                    ready, _, _ = select.select([self.connection], [], [], 1.0)
                    if ready and not self.connection.recv(1):
                        return
                    if not ready:
                        self._chunk(b": ping\n\n")
        finally:
            service.streams_open -= 1
            service.streams_left += 1

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _trickle(self, trickle: Trickle) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(trickle.size))
        self.end_headers()
        for _ in range(trickle.size):
            self.wfile.write(b" ")
            self.wfile.flush()
            time.sleep(trickle.every)  # the trickle itself, not a wait for anything


class HostileService:
    """``answers[path]`` (or ``answers["POST /path"]``, for that method only): a JSON value
    (200), ``(status, value)``, raw ``bytes``, a :class:`Trickle`, a :class:`Redirect` or a
    :class:`Stream` (any of them :class:`Held`);
    or a function of the request's query string that returns one of those;
    ``frames``: what ``/ws`` sends each client after it connects; ``asked``: each request's
    method and path (``queries``: its query), ``sent``: those with a JSON body and the body;
    ``authorizations``: the Authorization headers the requests and websockets came with;
    ``ws_refusal``: the HTTP status websocket handshakes are refused with (None: accepted;
    ``ws_handshakes``: their request headers);
    ``compress``: JSON answers gzipped for a client that accepts it, as a reverse proxy in
    front (nginx's ``gzip on``, Caddy's ``encode``) does."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.queries: list[str] = []  # each request's query string, in the order asked
        self.sent: list[tuple[str, Any]] = []
        self.authorizations: set[str | None] = set()
        self.compress = False
        self.ws_refusal: int | None = None  # the status a websocket handshake is refused with
        self.ws_handshakes: list[Any] = []  # each handshake's request headers
        self.frames: list[str | bytes] = []
        self.streams_open = self.streams_left = 0  # held streams open, and those left
        self.streams_end = threading.Event()
        self._sockets: list[ServerConnection] = []  # open ones (drop_websockets)
        self._every_socket: list[ServerConnection] = []
        self._http = _Server(("127.0.0.1", 0), _Handler)
        self._http.service = self
        # No keepalive pings: a client kept busy by a test's flood would miss their answers
        # and the connection (and the frames not sent yet) would go.
        self._ws: Server = serve(self._websocket, "127.0.0.1", 0, ping_interval=None,
                                 process_request=self._handshake)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self.ws_port = self._ws.socket.getsockname()[1]
        self.answers: dict[str, Any] = {
            "/api/system/configuration": {
                "app": {"remove_files": False, "browser_control_enabled": True},
                "paused": False, "presets": [], "folders": [],
                "websocket": {"port": self.ws_port, "path": "/ws"}},
            "/api/health": HEALTH,
            "/api/history": HISTORY,
            "/api/history/live": LIVE,
        }
        self._threads = [threading.Thread(target=self._http.serve_forever, daemon=True),
                         threading.Thread(target=self._ws.serve_forever, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _handshake(self, connection: ServerConnection, request: Any) -> Any:
        self.ws_handshakes.append(request.headers)
        if self.ws_refusal is not None:
            return connection.respond(self.ws_refusal, "Refused.\n")
        # Registered before the answer goes: a client told it is connected may drop it at
        # once. In the handler, a drop could come first on a busy box and find nothing.
        self._sockets.append(connection)
        self._every_socket.append(connection)
        return None

    def _websocket(self, connection: ServerConnection) -> None:
        self.authorizations.add(connection.request.headers.get("Authorization"))
        try:
            for frame in self.frames:
                connection.send(frame)
            for _ in connection:  # held open until the client goes
                pass
        except ConnectionClosed:
            pass

    def drop_websockets(self) -> None:
        """Close every websocket, as a restart of the service would. Without waiting: the
        close waits for the client's answer, and the client may run on the caller's loop."""
        for connection in self._sockets:
            threading.Thread(target=connection.close, daemon=True).start()
        self._sockets.clear()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        # The websocket server's shutdown waits for every connection's handler, and a
        # connection whose close the client never answered (a test's app gone mid-close)
        # held it for good (a whole mutation run stopped there): their sockets go first.
        for connection in self._every_socket:
            with contextlib.suppress(OSError):
                connection.socket.shutdown(socket.SHUT_RDWR)
        self._ws.shutdown()
        for thread in self._threads:
            thread.join(timeout=10)


def hostile_service() -> Iterator[HostileService]:
    """A fixture's body: the service, closed afterwards."""
    service = HostileService()
    yield service
    service.close()
