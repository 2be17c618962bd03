"""The local origin's HTTP side: a threaded server on 127.0.0.1 whose connections can be
counted and closed, and a handler that serves files with ranges, rate limits and stalls."""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .origin import MediaOrigin

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".html": "text/html; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
}

# Copy in large chunks when sendfile is unavailable so loopback throughput is not CPU bound.
_COPY_CHUNK = 1024 * 1024


class RequestRecord(NamedTuple):
    """One request seen by the origin; a tuple so tests can compare against plain tuples."""

    method: str
    path: str  # URL path without the query string
    range: str | None  # the raw Range header, if any


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the inclusive byte span a Range header asks for, or None to serve the whole file.

    Raises `Unsatisfiable` for a well-formed single range that lies outside the file. Malformed
    and multi-range headers are ignored (RFC 9110 allows serving the full representation).
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, sep, last = spec.strip().partition("-")
    if not sep:
        return None
    try:
        if not first:
            # Suffix form "bytes=-N": the last N bytes.
            suffix = int(last)
            if suffix <= 0:
                raise Unsatisfiable
            return max(0, size - suffix), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if last and end < start:
        # Invalid range-spec: RFC 9110 says ignore the header. ("N-" past EOF is a 416 instead.)
        return None
    if start >= size:
        raise Unsatisfiable
    return start, min(end, size - 1)


class OriginServer(ThreadingHTTPServer):
    daemon_threads = True
    # A fresh random port per origin; reuse would only mask a leaked listener.
    allow_reuse_address = False

    def __init__(self, origin: MediaOrigin) -> None:
        self.origin = origin
        self._conn_lock = threading.Lock()
        self._conn_threads: set[threading.Thread] = set()
        self._conns: set[socket.socket] = set()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: socket.socket, client_address: tuple) -> None:
        # Track threads and sockets ourselves: the stdlib forgets daemon threads, but stop()
        # must be able to wake and join them.
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"media-origin-{self.server_address[1]}-conn-{client_address[1]}",
            daemon=True,
        )
        with self._conn_lock:
            self._conn_threads.add(thread)
            self._conns.add(request)
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: tuple) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._conns.discard(request)
                self._conn_threads.discard(threading.current_thread())

    def handle_error(self, request: object, client_address: tuple) -> None:
        log.exception("media origin: error serving %s", client_address)

    @property
    def active_connections(self) -> int:
        with self._conn_lock:
            return len(self._conns)

    def close_connections(self, timeout: float) -> None:
        with self._conn_lock:
            conns = list(self._conns)
            threads = list(self._conn_threads)
        for conn in conns:
            # Wakes handlers blocked in recv/send/sendfile on an idle or slow client.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.error("media origin: connection thread %s did not stop", thread.name)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive makes HLS segment fetches realistic; every response has a length.
    protocol_version = "HTTP/1.1"
    server_version = "MediaOrigin/1"
    # Bounds how long an abandoned connection can pin a thread.
    timeout = 30
    server: OriginServer

    def log_message(self, format: str, *args: object) -> None:
        log.debug("media origin: %s - " + format, self.address_string(), *args)

    def log_error(self, format: str, *args: object) -> None:
        # Mostly the deliberate 404/500 answers; real faults go through handle_error instead.
        log.info("media origin: %s - " + format, self.address_string(), *args)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            # Clients (yt-dlp probing, cancelled downloads) hang up mid-response all the time.
            self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        origin = self.server.origin
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        origin._record(RequestRecord(self.command, path, self.headers.get("Range")))

        if path == "/error.mp4":
            self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR)
            return
        if path == "/slow.mp4":
            rate = self._rate(parsed.query, lambda: origin.slow_rate)
            stall = urllib.parse.parse_qs(parsed.query).get("stall_after")
            if rate is not None:
                self._send_file(origin.path_for(path), rate=rate,
                                stall_after=int(stall[-1]) if stall else None)
            return
        if path == "/liar.mp4":
            self._liar(parsed.query)
            return
        if path.startswith("/hls-stall/"):
            # The HLS stream with segments whose server answers, then never sends a byte: a
            # dead connection that ffmpeg (which has no read timeout) waits on for ever.
            file = origin._route(path.replace("/hls-stall/", "/hls/", 1))
            if file is None:
                self.send_error(HTTPStatus.NOT_FOUND)
            elif file.suffix == ".m3u8":
                self._send_file(file)
            else:
                self._send_file(file, rate=lambda: 1_000_000, stall_after=0)
            return
        feed = origin.feeds.answer(path, urllib.parse.parse_qs(parsed.query))
        if feed is not None:
            status, body, content_type = feed
            if status != HTTPStatus.OK:
                self.send_error(status)
            else:
                self._send_bytes(body, content_type)
            return
        # A value's bytes that are not UTF-8 stay as they were sent (surrogate escapes): a
        # site's text that is not valid (see MediaOrigin.watch_url).
        page = origin._page(path, urllib.parse.parse_qs(parsed.query, errors="surrogateescape"))
        if page is not None:
            self._send_bytes(*page)
            return
        file = origin._route(path)
        if file is None:
            # Covers /fail.mp4 too: it is simply never routed.
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self._send_file(file)

    def _liar(self, query: str) -> None:
        """A site that claims more bytes than any disk holds (past 2**63), sends a clip's (at
        ``?rate=`` bytes a second if given) and closes: a Content-Length is any number a server
        writes."""
        clip = self.server.origin.path_for(self.server.origin.clip_url)
        rate = self._rate(query, lambda: 0)
        if rate is None:
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", "1" + "0" * 25)
        self.end_headers()
        if self.command == "GET":
            with clip.open("rb") as fh:
                if rate():
                    self._trickle(fh, 0, clip.stat().st_size, rate)
                else:
                    self._copy(fh, 0, clip.stat().st_size)
        self.close_connection = True

    def _rate(self, query: str, default: Callable[[], int]) -> Callable[[], int] | None:
        """The transfer's rate, read as it sends: ``?rate=`` fixes it, else ``default``."""
        values = urllib.parse.parse_qs(query).get("rate")
        if not values:
            return default
        try:
            rate = int(values[-1])
        except ValueError:
            rate = 0
        if rate <= 0:
            self.send_error(HTTPStatus.BAD_REQUEST, "rate must be a positive integer")
            return None
        return lambda: rate

    def _send_headers(self, size: int, content_type: str) -> tuple[int, int] | None:
        """Send status and headers for a (possibly ranged) body; return the span to send."""
        try:
            span = parse_range(self.headers.get("Range"), size)
        except Unsatisfiable:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        start, end = span if span is not None else (0, size - 1)
        length = end - start + 1 if size else 0
        if span is None:
            self.send_response(HTTPStatus.OK)
        else:
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "HEAD" or length == 0:
            return None
        return start, length

    def _send_bytes(self, data: bytes, content_type: str) -> None:
        span = self._send_headers(len(data), content_type)
        if span is not None:
            start, length = span
            try:
                self.wfile.write(data[start : start + length])
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
                self.close_connection = True

    def _send_file(
        self, file: Path, rate: Callable[[], int] | None = None, stall_after: int | None = None
    ) -> None:
        content_type = CONTENT_TYPES.get(file.suffix, "application/octet-stream")
        span = self._send_headers(file.stat().st_size, content_type)
        if span is None:
            return
        start, length = span
        with file.open("rb") as fh:
            if rate is None:
                self._copy(fh, start, length)
            else:
                self._trickle(fh, start, length, rate, stall_after)

    def _copy(self, fh: IO[bytes], start: int, length: int) -> None:
        try:
            self.connection.sendfile(fh, start, length)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    def _trickle(
        self, fh: IO[bytes], start: int, length: int, rate: Callable[[], int],
        stall_after: int | None = None,
    ) -> None:
        stop = self.server.origin._stop_event
        fh.seek(start)
        sent = paced_from = current = chunk = 0
        began = 0.0
        try:
            while sent < length:
                if (now := rate()) != current:  # first, or a test changed origin.slow_rate:
                    current, paced_from, began = now, sent, time.monotonic()  # paced anew
                    # ~20 writes a second keeps progress smooth without a syscall storm.
                    chunk = max(1, min(current // 20, _COPY_CHUNK))
                if stall_after is not None and sent >= stall_after:
                    # A server that stops sending but keeps the connection: a stuck download.
                    # It lets go once the client hangs up, so that a later count of open
                    # connections (active_connections) is not fooled by a stall long gone.
                    while not stop.wait(0.2) and not self._client_gone():
                        pass
                    self.close_connection = True
                    return
                # Pace against the start time rather than per chunk so timer slop does not add up.
                delay = began + (sent - paced_from) / current - time.monotonic()
                if (delay > 0 and stop.wait(delay)) or stop.is_set():
                    log.debug("media origin: aborting slow transfer at %d/%d", sent, length)
                    self.close_connection = True
                    return
                data = fh.read(min(chunk, length - sent))
                if not data:
                    break
                self.wfile.write(data)
                sent += len(data)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True
