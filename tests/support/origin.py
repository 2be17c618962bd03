"""A local media origin for end-to-end tests.

`MediaOrigin` serves media generated with the real ffmpeg from a threaded HTTP server on
127.0.0.1, so tests can run yt-dlp (and the appliance) against real HTTP without touching the
network. Media is generated once per root folder and reused, so a session-scoped fixture is cheap.
"""

from __future__ import annotations

import contextlib
import fcntl
import html
import json
import logging
import os
import select
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, NamedTuple

from .feeds import Feeds

log = logging.getLogger(__name__)

# Bump when the generation recipe changes so stale caches in a reused root are not served.
MEDIA_VERSION = "v1"

DEFAULT_SLOW_RATE = 64 * 1024

_FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
_FFMPEG_BASE = [_FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
# ultrafast keeps generation well under a second per file on a small box.
_H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
_AAC = ["-c:a", "aac", "-b:a", "64k"]

_CONTENT_TYPES = {
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


class _Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the inclusive byte span a Range header asks for, or None to serve the whole file.

    Raises `_Unsatisfiable` for a well-formed single range that lies outside the file. Malformed
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
                raise _Unsatisfiable
            return max(0, size - suffix), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if last and end < start:
        # Invalid range-spec: RFC 9110 says ignore the header. ("N-" past EOF is a 416 instead.)
        return None
    if start >= size:
        raise _Unsatisfiable
    return start, min(end, size - 1)


def _run_ffmpeg(args: list[str]) -> None:
    cmd = [*_FFMPEG_BASE, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        log.error("ffmpeg failed (%s): %s", proc.returncode, proc.stderr.strip()[-2000:])
        raise RuntimeError(f"ffmpeg failed with exit code {proc.returncode}: {' '.join(cmd)}")


# Clip name -> (duration in seconds, upload date) for the /watch/ pages.
WATCH_PAGES = {"clip": (3, "2024-01-02"), "clip2": (2, "2024-02-03"), "short": (1, "2024-03-04")}
WATCH_META = ("title", "uploader")


def _lavfi_av(video: str, freq: int, duration: float) -> list[str]:
    return [
        *("-f", "lavfi", "-i", f"{video}:duration={duration}"),
        *("-f", "lavfi", "-i", f"sine=frequency={freq}:duration={duration}"),
    ]


def _make_mp4(target: Path, video: str, freq: int, duration: float, extra: list[str]) -> None:
    _run_ffmpeg(
        [
            *_lavfi_av(video, freq, duration),
            *extra,
            *_H264,
            *_AAC,
            "-shortest",
            # moov up front so a partial download is already probeable.
            *["-movflags", "+faststart"],
            str(target),
        ]
    )


def _make_hls(target_dir: Path) -> None:
    _run_ffmpeg(
        [
            *_lavfi_av("testsrc=size=320x240:rate=25", 550, 4),
            *_H264,
            # A keyframe every second so each 1 s segment starts cleanly.
            *["-g", "25", "-keyint_min", "25", "-sc_threshold", "0"],
            *_AAC,
            "-shortest",
            *["-f", "hls", "-hls_time", "1", "-hls_list_size", "0", "-hls_playlist_type", "vod"],
            *("-hls_segment_filename", str(target_dir / "seg%03d.ts")),
            str(target_dir / "index.m3u8"),
        ]
    )


def _free_box_header(size: int) -> bytes:
    """Header of an ISO-BMFF 'free' box of `size` bytes; top-level free boxes are legal padding."""
    if size < 2**32:
        return struct.pack(">I4s", size, b"free")
    return struct.pack(">I4sQ", 1, b"free", size)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # Serialises generation across processes (xdist workers may share a root).
    with path.open("a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _OriginServer(ThreadingHTTPServer):
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
    server: _OriginServer

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
            rate = self._rate(parsed.query, origin.slow_rate)
            stall = urllib.parse.parse_qs(parsed.query).get("stall_after")
            if rate is not None:
                self._send_file(origin.path_for(path), rate=rate,
                                stall_after=int(stall[-1]) if stall else None)
            return
        feed = origin.feeds.answer(path, urllib.parse.parse_qs(parsed.query))
        if feed is not None:
            status, body, content_type = feed
            if status != HTTPStatus.OK:
                self.send_error(status)
            else:
                self._send_bytes(body, content_type)
            return
        page = origin._page(path, urllib.parse.parse_qs(parsed.query))
        if page is not None:
            self._send_bytes(*page)
            return
        file = origin._route(path)
        if file is None:
            # Covers /fail.mp4 too: it is simply never routed.
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self._send_file(file)

    def _rate(self, query: str, default: int) -> int | None:
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
        return rate

    def _send_headers(self, size: int, content_type: str) -> tuple[int, int] | None:
        """Send status and headers for a (possibly ranged) body; return the span to send."""
        try:
            span = parse_range(self.headers.get("Range"), size)
        except _Unsatisfiable:
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
        self, file: Path, rate: int | None = None, stall_after: int | None = None
    ) -> None:
        content_type = _CONTENT_TYPES.get(file.suffix, "application/octet-stream")
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
        self, fh: IO[bytes], start: int, length: int, rate: int, stall_after: int | None = None
    ) -> None:
        stop = self.server.origin._stop_event
        # ~20 writes a second keeps progress smooth without a syscall storm at high rates.
        chunk = max(1, min(rate // 20, _COPY_CHUNK))
        fh.seek(start)
        sent = 0
        began = time.monotonic()
        try:
            while sent < length:
                if stall_after is not None and sent >= stall_after:
                    # A server that stops sending but keeps the connection: a stuck download.
                    # It lets go once the client hangs up, so that a later count of open
                    # connections (active_connections) is not fooled by a stall long gone.
                    while not stop.wait(0.2) and not self._client_gone():
                        pass
                    self.close_connection = True
                    return
                # Pace against the start time rather than per chunk so timer slop does not add up.
                delay = began + sent / rate - time.monotonic()
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


class MediaOrigin:
    """HTTP origin on 127.0.0.1 serving ffmpeg-generated media; see module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.media_dir = self.root / f"media-{MEDIA_VERSION}"
        # Bytes per second for /slow.mp4; read per request so a test can change it live.
        self.slow_rate: int = DEFAULT_SLOW_RATE
        self.requests: list[RequestRecord] = []
        self._requests_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._server: _OriginServer | None = None
        self._thread: threading.Thread | None = None
        self._big_lock = threading.Lock()
        self._big: dict[str, Path] = {}
        self._routes: dict[str, Path] = {}
        # Feeds with entry lists a test sets (tests/support/feeds.py).
        self.feeds = Feeds(self._stop_event)

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> MediaOrigin:
        if self._server is not None:
            raise RuntimeError("MediaOrigin already started")
        self.generate()
        self._stop_event.clear()
        self._server = _OriginServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"media-origin-{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        log.debug("media origin listening on %s", self.base_url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        # Set first so trickling handlers bail out instead of holding their sockets open.
        self._stop_event.set()
        server.shutdown()
        server.close_connections(timeout)
        server.server_close()
        if thread is not None:
            thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> MediaOrigin:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- media generation ------------------------------------------------------------------

    def generate(self) -> None:
        """Create any missing media under root; cheap when everything is already cached."""
        self.media_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.media_dir / ".lock"):
            self._ensure(
                "clip.mp4",
                lambda out: _make_mp4(out, "testsrc=size=320x240:rate=25", 440, 3, []),
            )
            self._ensure(
                "clip2.mp4",
                lambda out: _make_mp4(out, "testsrc2=size=256x144:rate=25", 880, 2, []),
            )
            self._ensure(
                "short.mp4",
                lambda out: _make_mp4(out, "testsrc=size=320x240:rate=25", 660, 1, []),
            )
            # Temporal noise defeats the encoder so 10 s comes out at several MB, enough for a
            # trickled transfer to be interrupted long before it finishes.
            self._ensure(
                "slow.mp4",
                lambda out: _make_mp4(
                    out,
                    "testsrc=size=640x360:rate=25",
                    330,
                    10,
                    ["-vf", "noise=alls=60:allf=t", "-b:v", "4M"],
                ),
            )
            self._ensure_hls()
        self._routes = {
            "/media/clip.mp4": self.media_dir / "clip.mp4",
            "/media/clip2.mp4": self.media_dir / "clip2.mp4",
            "/media/short.mp4": self.media_dir / "short.mp4",
            "/slow.mp4": self.media_dir / "slow.mp4",
            "/hls/index.m3u8": self.media_dir / "hls" / "index.m3u8",
        }
        for seg in sorted((self.media_dir / "hls").glob("*.ts")):
            self._routes[f"/hls/{seg.name}"] = seg

    def _ensure(self, name: str, make: Callable[[Path], None]) -> None:
        target = self.media_dir / name
        if target.exists() and target.stat().st_size > 0:
            return
        tmp = target.with_name(f".{name}.{os.getpid()}.tmp{target.suffix}")
        started = time.monotonic()
        make(tmp)
        # Atomic publish: a crash mid-encode never leaves a truncated file that looks cached.
        tmp.replace(target)
        log.debug("generated %s in %.2fs", target, time.monotonic() - started)

    def _ensure_hls(self) -> None:
        target = self.media_dir / "hls"
        if (target / "index.m3u8").exists():
            return
        tmp = self.media_dir / f".hls.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _make_hls(tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)

    def _page(self, path: str, query: dict[str, list[str]]) -> tuple[bytes, str] | None:
        """Documents rendered per request, since they embed this origin's port."""
        if path == "/playlist.html":
            return self._playlist_html().encode(), _CONTENT_TYPES[".html"]
        if path == "/feed.rss":
            return self._feed_rss().encode(), _CONTENT_TYPES[".rss"]
        if path.startswith("/watch/") and path.endswith(".html"):
            name = path.removeprefix("/watch/").removesuffix(".html")
            if name in WATCH_PAGES:
                meta = {key: values[-1] for key, values in query.items()
                        if key in WATCH_META}
                return self._watch_html(name, meta).encode(), _CONTENT_TYPES[".html"]
        return None

    def _watch_html(self, name: str, given: dict[str, str]) -> str:
        # A page with schema.org JSON-LD, as video sites publish: yt-dlp's generic extractor
        # reads duration, upload date and description from it (a bare .mp4 has none of them).
        duration, uploaded = WATCH_PAGES[name]
        title = given.get("title", f"Watch {name}")
        meta = {
            "@context": "https://schema.org", "@type": "VideoObject",
            "name": title, "description": f"The {name} clip, with metadata.",
            "uploadDate": uploaded, "duration": f"PT{duration}S",
            "contentUrl": f"{self.base_url}/media/{name}.mp4",
        }
        if "uploader" in given:
            meta["author"] = {"@type": "Person", "name": given["uploader"]}
        return (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>\n"
            f'<script type="application/ld+json">{json.dumps(meta)}</script>'
            "</head><body></body></html>\n"
        )

    def watch_url(self, name: str, **meta: str) -> str:
        """A page for clip ``name`` (clip, clip2, short) whose info has a duration, an upload
        date and a description; its video id is ``name``. ``meta`` sets what the site says
        of it (WATCH_META: title, uploader), hostile values included."""
        query = f"?{urllib.parse.urlencode(meta)}" if meta else ""
        return f"{self.base_url}/watch/{name}.html{query}"

    def _playlist_html(self) -> str:
        # Several <video> tags make yt-dlp's generic extractor return a playlist of HTML5 media
        # entries (an .m3u would be read as an HLS manifest instead, i.e. one video).
        videos = "\n".join(
            f'<video controls><source src="{html.escape(src)}" type="video/mp4"></video>'
            for src in self.playlist_entry_urls
        )
        return (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            "<title>Origin playlist</title></head>\n"
            f"<body>\n{videos}\n</body></html>\n"
        )

    def _feed_rss(self) -> str:
        # No <guid>: yt-dlp would smuggle it into the entry URL as a #fragment. Enclosure URLs
        # must be absolute because yt-dlp does not resolve them against the feed URL.
        items = "\n".join(
            f"<item><title>{html.escape(Path(src).stem)}</title>"
            f'<enclosure url="{html.escape(src)}" type="video/mp4" length="0"/></item>'
            for src in self.playlist_entry_urls
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<rss version="2.0"><channel><title>Origin feed</title>\n'
            f"{items}\n</channel></rss>\n"
        )

    # ---- big files -------------------------------------------------------------------------

    def big_file(self, size_bytes: int) -> str:
        """URL of a `size_bytes` file, created once under root and cached.

        When large enough it is a valid mp4 (clip.mp4 followed by a sparse 'free' padding box),
        so anything that probes it still sees real media; creation is instant even for GBs.
        """
        if size_bytes <= 0:
            raise ValueError("size_bytes must be positive")
        name = f"big-{size_bytes}.mp4"
        with self._big_lock:
            if name not in self._big:
                self.media_dir.mkdir(parents=True, exist_ok=True)
                with _file_lock(self.media_dir / ".lock"):
                    self._big[name] = self._make_big(name, size_bytes)
        return f"{self.base_url}/big/{name}"

    def _make_big(self, name: str, size: int) -> Path:
        target = self.media_dir / name
        if target.exists() and target.stat().st_size == size:
            return target
        tmp = target.with_name(f".{name}.{os.getpid()}.tmp")
        clip = (self.media_dir / "clip.mp4").read_bytes()
        with tmp.open("wb") as fh:
            pad = size - len(clip)
            header = _free_box_header(pad) if pad > 0 else b""
            if pad >= len(header) + 8:
                fh.write(clip)
                fh.write(header)
                # truncate() leaves the payload as a sparse hole: no disk or time spent on zeros.
                fh.truncate(size)
            else:
                fh.write(os.urandom(size))
        tmp.replace(target)
        return target

    # ---- URLs ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("MediaOrigin is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def clip_url(self) -> str:
        return f"{self.base_url}/media/clip.mp4"

    @property
    def clip2_url(self) -> str:
        return f"{self.base_url}/media/clip2.mp4"

    @property
    def short_url(self) -> str:
        return f"{self.base_url}/media/short.mp4"

    @property
    def hls_url(self) -> str:
        return f"{self.base_url}/hls/index.m3u8"

    @property
    def playlist_url(self) -> str:
        return f"{self.base_url}/playlist.html"

    @property
    def feed_url(self) -> str:
        """RSS feed of the same entries; yt-dlp flattens it into unresolved url_transparent refs."""
        return f"{self.base_url}/feed.rss"

    @property
    def playlist_entry_urls(self) -> list[str]:
        """The URLs the playlist page points at, in page order."""
        return [self.clip_url, self.clip2_url, self.short_url]

    @property
    def fail_url(self) -> str:
        return f"{self.base_url}/fail.mp4"

    @property
    def error_500_url(self) -> str:
        return f"{self.base_url}/error.mp4"

    @property
    def slow_url(self) -> str:
        return f"{self.base_url}/slow.mp4"

    def stall_url(self, after: int = 200_000) -> str:
        """slow_url that sends ``after`` bytes and then nothing, holding the connection."""
        return f"{self.slow_url}?rate=1000000&stall_after={int(after)}"

    def slow_url_at(self, rate: int) -> str:
        """slow_url trickled at `rate` bytes per second instead of `slow_rate`."""
        return f"{self.slow_url}?rate={int(rate)}"

    def path_for(self, url_or_path: str) -> Path:
        """Local file behind a served URL (or URL path), e.g. to compare downloaded bytes."""
        path = urllib.parse.urlsplit(url_or_path).path
        file = self._route(path)
        if file is None:
            raise KeyError(f"no file is served at {path!r}")
        return file

    def _route(self, path: str) -> Path | None:
        if path.startswith("/big/"):
            with self._big_lock:
                return self._big.get(path.removeprefix("/big/"))
        return self._routes.get(path)

    @property
    def active_connections(self) -> int:
        """Client connections currently open, e.g. to wait until a cancelled download hung up."""
        return self._server.active_connections if self._server is not None else 0

    # ---- request log -----------------------------------------------------------------------

    def _record(self, record: RequestRecord) -> None:
        with self._requests_lock:
            self.requests.append(record)

    def requests_for(self, url_or_path: str) -> list[RequestRecord]:
        """Snapshot of the logged requests for one URL path (query string ignored)."""
        path = urllib.parse.urlsplit(url_or_path).path
        with self._requests_lock:
            return [r for r in self.requests if r.path == path]

    def clear_requests(self) -> None:
        with self._requests_lock:
            self.requests.clear()
