"""A local media origin for end-to-end tests.

`MediaOrigin` serves media generated with the real ffmpeg from a threaded HTTP server on
127.0.0.1, so tests can run yt-dlp (and the appliance) against real HTTP without touching the
network. Media is generated once per root folder and reused, so a session-scoped fixture is cheap.
"""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from .feeds import Feeds
from .media_files import file_lock, free_box_header, make_hls, make_mp4
from .origin_http import CONTENT_TYPES, OriginServer, RequestRecord

log = logging.getLogger(__name__)

# Bump when the generation recipe changes so stale caches in a reused root are not served.
MEDIA_VERSION = "v1"

DEFAULT_SLOW_RATE = 64 * 1024


# Clip name -> (duration in seconds, upload date) for the /watch/ pages.
WATCH_PAGES = {"clip": (3, "2024-01-02"), "clip2": (2, "2024-02-03"), "short": (1, "2024-03-04")}
WATCH_META = ("title", "uploader")


class MediaOrigin:
    """HTTP origin on 127.0.0.1 serving ffmpeg-generated media; see module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.media_dir = self.root / f"media-{MEDIA_VERSION}"
        # Bytes per second for /slow.mp4 (without ?rate=); read as it sends, so a test can
        # change it live: a running transfer follows (a slow download the test lets go).
        self.slow_rate: int = DEFAULT_SLOW_RATE
        self.requests: list[RequestRecord] = []
        self._requests_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._server: OriginServer | None = None
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
        self._server = OriginServer(self)
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
        with file_lock(self.media_dir / ".lock"):
            self._ensure(
                "clip.mp4",
                lambda out: make_mp4(out, "testsrc=size=320x240:rate=25", 440, 3, []),
            )
            self._ensure(
                "clip2.mp4",
                lambda out: make_mp4(out, "testsrc2=size=256x144:rate=25", 880, 2, []),
            )
            self._ensure(
                "short.mp4",
                lambda out: make_mp4(out, "testsrc=size=320x240:rate=25", 660, 1, []),
            )
            # Temporal noise defeats the encoder so 10 s comes out at several MB, enough for a
            # trickled transfer to be interrupted long before it finishes.
            self._ensure(
                "slow.mp4",
                lambda out: make_mp4(
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
            "/other/clip.mp4": self.media_dir / "clip2.mp4",
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
        make_hls(tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)

    def _page(self, path: str, query: dict[str, list[str]]) -> tuple[bytes, str] | None:
        """Documents rendered per request, since they embed this origin's port."""
        if path == "/playlist.html":
            return self._playlist_html().encode(), CONTENT_TYPES[".html"]
        if path == "/feed.rss":
            return self._feed_rss().encode(), CONTENT_TYPES[".rss"]
        if path.startswith("/watch/") and path.endswith(".html"):
            name = path.removeprefix("/watch/").removesuffix(".html")
            if name in WATCH_PAGES:
                meta = {key: values[-1] for key, values in query.items()
                        if key in WATCH_META}
                page = self._watch_html(name, meta).encode("utf-8", "surrogateescape")
                return page, CONTENT_TYPES[".html"]
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
        of it (WATCH_META: title, uploader), hostile values included: a lone surrogate
        ("\udce9") is sent as its byte, which the page's JSON-LD holds as "\\udce9", as a
        site's JSON may."""
        query = f"?{urllib.parse.urlencode(meta, errors='surrogateescape')}" if meta else ""
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
                with file_lock(self.media_dir / ".lock"):
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
            header = free_box_header(pad) if pad > 0 else b""
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
    def other_clip_url(self) -> str:
        """Another video under clip.mp4's file name (clip2's bytes, in another folder): to
        yt-dlp's generic extractor a direct link's id is its file's name, 'clip' for both."""
        return f"{self.base_url}/other/clip.mp4"

    @property
    def short_url(self) -> str:
        return f"{self.base_url}/media/short.mp4"

    @property
    def hls_url(self) -> str:
        return f"{self.base_url}/hls/index.m3u8"

    @property
    def stalled_hls_url(self) -> str:
        """hls_url's stream whose segments stall: each answers with its headers, then sends
        nothing and holds the connection (a dead connection to ffmpeg)."""
        return f"{self.base_url}/hls-stall/index.m3u8"

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
    def liar_url(self) -> str:
        """clip.mp4's bytes under a Content-Length of 10**25."""
        return f"{self.base_url}/liar.mp4"

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
