"""A site on 127.0.0.1 that serves the media origin's HLS stream only to a logged-in visitor (a
cookie and an ``Authorization`` header), holds each segment until the test releases it, and
answers a path with 429 Too Many Requests and a ``Retry-After`` the test chooses.

The hold keeps whatever downloads the stream at work (ffmpeg alive, on the code before
secrets18) while a test reads every process's command line; the 429 is the rate limit a site
sends, with its wait in seconds or as an HTTP date."""

from __future__ import annotations

import http.server
import threading
import urllib.parse
from http import HTTPStatus
from pathlib import Path
from types import TracebackType

COOKIE_NAME = "session"
HOLD_LIMIT = 120.0  # a segment is sent at the latest then, whatever the test does


class GuardedSite:
    """See the module docstring. ``cookie`` and ``token`` are the visitor's secrets."""

    def __init__(self, hls_folder: Path, cookie: str, token: str) -> None:
        self.hls_folder, self.cookie, self.token = hls_folder, cookie, token
        self.released = threading.Event()
        self.retry_after: str | None = None  # the header /limited.mp4 answers with
        self.segment_asked = threading.Event()
        self.refused: list[str] = []  # the paths asked without the visitor's secrets
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.site = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self) -> GuardedSite:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def hls_url(self) -> str:
        return f"{self.base_url}/hls/index.m3u8"

    @property
    def limited_url(self) -> str:
        return f"{self.base_url}/limited.mp4"

    def cookies_file(self) -> str:
        """The visitor's cookie in Netscape format, as an item or a preset carries it."""
        host = urllib.parse.urlsplit(self.base_url).hostname
        return (f"# Netscape HTTP Cookie File\n"
                f"{host}\tFALSE\t/\tFALSE\t0\t{COOKIE_NAME}\t{self.cookie}\n")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: http.server.ThreadingHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        site: GuardedSite = self.server.site  # type: ignore[attr-defined]
        path = urllib.parse.urlsplit(self.path).path
        if path == "/limited.mp4":
            self._answer(HTTPStatus.TOO_MANY_REQUESTS, b"slow down",
                         {"Retry-After": site.retry_after} if site.retry_after else {})
            return
        name = path.removeprefix("/hls/")
        file = site.hls_folder / name
        if not path.startswith("/hls/") or "/" in name or not file.is_file():
            self._answer(HTTPStatus.NOT_FOUND, b"no such file")
            return
        if (f"{COOKIE_NAME}={site.cookie}" not in (self.headers.get("Cookie") or "")
                or self.headers.get("Authorization") != f"Bearer {site.token}"):
            site.refused.append(path)
            self._answer(HTTPStatus.FORBIDDEN, b"log in first")
            return
        if file.suffix == ".ts":
            site.segment_asked.set()
            site.released.wait(HOLD_LIMIT)
        kind = "application/vnd.apple.mpegurl" if file.suffix == ".m3u8" else "video/mp2t"
        self._answer(HTTPStatus.OK, file.read_bytes(), {"Content-Type": kind})

    def _answer(self, status: HTTPStatus, body: bytes, headers: dict[str, str] | None = None
                ) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
