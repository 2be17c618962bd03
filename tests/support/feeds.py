"""Feeds the media origin serves, with entry lists a test sets: RSS and Atom at
``/feeds/<name>.rss`` / ``.atom``, YouTube's channel feed at ``/feeds/videos.xml?channel_id=``
(or ``playlist_id=``), ``/@<handle>`` channel pages that name a channel id, and pages a
test writes (``/pages/<name>``) for task definitions to parse.

A feed can answer 500, serve junk, or hold its answer until the test releases it (to kill
the service in the middle of a run).
"""

from __future__ import annotations

import dataclasses
import html
import threading
from typing import Any

RSS = "application/rss+xml; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
HTML = "text/html; charset=utf-8"


@dataclasses.dataclass
class FeedEntry:
    id: str  # the video id (YouTube feeds) or guid
    url: str
    title: str = ""
    published: str = "2024-01-02T00:00:00+00:00"


class Feeds:
    def __init__(self, stop: threading.Event) -> None:
        self._lock = threading.Lock()
        self._stop = stop
        self._entries: dict[str, list[FeedEntry]] = {}
        self._status: dict[str, int] = {}
        self._raw: dict[str, bytes] = {}
        self._gates: dict[str, threading.Event] = {}
        self.handles: dict[str, str] = {}  # "@name" -> channel id
        self.pages: dict[str, tuple[bytes, str]] = {}  # /pages/<name> -> body, type
        self.hits: dict[str, int] = {}
        self.waiting: dict[str, int] = {}

    def set(self, name: str, entries: list[FeedEntry]) -> None:
        with self._lock:
            self._entries[name] = list(entries)
            self._status.pop(name, None)
            self._raw.pop(name, None)

    def add(self, name: str, entry: FeedEntry) -> None:
        with self._lock:
            self._entries.setdefault(name, []).insert(0, entry)  # newest first, as feeds are

    def fail(self, name: str, status: int = 500) -> None:
        with self._lock:
            self._status[name] = status

    def junk(self, name: str, body: bytes) -> None:
        with self._lock:
            self._raw[name] = body

    def hold(self, name: str) -> threading.Event:
        """Requests for ``name`` wait until the returned event is set."""
        gate = threading.Event()
        with self._lock:
            self._gates[name] = gate
        return gate

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, bytes, str] | None:
        if path.startswith("/@") and path[1:] in self.handles:
            channel = self.handles[path[1:]]
            page = (f'<html><head><meta itemprop="identifier" content="{channel}">'
                    f"</head><body>{html.escape(path[1:])}</body></html>")
            return 200, page.encode(), HTML
        page = self.pages.get(path.removeprefix("/pages/"))
        if path.startswith("/pages/") and page is not None:
            return 200, *page
        if path == "/feeds/videos.xml":
            name = (query.get("channel_id") or query.get("playlist_id") or [""])[-1]
            return self._serve(name, self._youtube)
        for suffix, render in ((".rss", self._rss), (".atom", self._atom)):
            if path.startswith("/feeds/") and path.endswith(suffix):
                return self._serve(path.removeprefix("/feeds/").removesuffix(suffix), render)
        return None

    def _serve(self, name: str, render: Any) -> tuple[int, bytes, str] | None:
        with self._lock:
            self.hits[name] = self.hits.get(name, 0) + 1
            gate = self._gates.get(name)
        if gate is not None:
            with self._lock:
                self.waiting[name] = self.waiting.get(name, 0) + 1
            while not gate.wait(0.1) and not self._stop.is_set():
                pass
        with self._lock:
            if name in self._status:
                return self._status[name], b"", RSS
            if name in self._raw:
                return 200, self._raw[name], RSS
            entries = self._entries.get(name)
            if entries is None:
                return 404, b"", RSS
            entries = list(entries)
        return 200, *render(name, entries)

    @staticmethod
    def _rss(name: str, entries: list[FeedEntry]) -> tuple[bytes, str]:
        items = "".join(
            f"<item><title>{html.escape(e.title or e.id)}</title>"
            f"<link>{html.escape(e.url)}</link><guid>{html.escape(e.id)}</guid>"
            f"<pubDate>{_rfc822(e.published)}</pubDate></item>" for e in entries)
        return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>Feed {html.escape(name)}</title>{items}</channel></rss>").encode(), RSS

    @staticmethod
    def _atom(name: str, entries: list[FeedEntry]) -> tuple[bytes, str]:
        items = "".join(
            f"<entry><id>{html.escape(e.id)}</id><title>{html.escape(e.title or e.id)}</title>"
            f'<link rel="alternate" href="{html.escape(e.url)}"/>'
            f"<published>{e.published}</published><updated>{e.published}</updated></entry>"
            for e in entries)
        return (f'<?xml version="1.0" encoding="utf-8"?>'
                f'<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom {html.escape(name)}'
                f"</title>{items}</feed>").encode(), ATOM

    @staticmethod
    def _youtube(name: str, entries: list[FeedEntry]) -> tuple[bytes, str]:
        items = "".join(
            f"<entry><id>yt:video:{e.id}</id><yt:videoId>{e.id}</yt:videoId>"
            f"<yt:channelId>{html.escape(name)}</yt:channelId>"
            f"<title>{html.escape(e.title or e.id)}</title>"
            f'<link rel="alternate" href="{html.escape(e.url)}"/>'
            f"<published>{e.published}</published></entry>" for e in entries)
        return (f'<?xml version="1.0" encoding="UTF-8"?><feed '
                f'xmlns:yt="http://www.youtube.com/xml/schemas/2015" '
                f'xmlns="http://www.w3.org/2005/Atom"><title>Channel {html.escape(name)}'
                f"</title>{items}</feed>").encode(), ATOM


def _rfc822(iso: str) -> str:
    from datetime import datetime
    from email.utils import format_datetime

    return format_datetime(datetime.fromisoformat(iso))
