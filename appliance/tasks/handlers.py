"""Handlers: how a task finds the entries behind its URL, cheaply.

Tried in order, the first that can handle the URL wins:

1. ``YoutubeHandler``: channel, ``@handle``, ``/c/``, ``/user/`` and playlist URLs read the
   channel's or playlist's Atom feed (``feeds/videos.xml``: the 15 newest videos, one small
   request) instead of listing the whole channel.
2. ``RssHandler``: RSS/Atom feeds (``feeds.py``): a ``.rss``/``.atom``/``.rdf`` address, a
   ``feed``/``rss``/``atom`` path segment, or ``#handler=rss``.
3. ``DefinitionHandler`` (``definitions.py``): pages a task definition describes.
4. ``GenericTaskHandler``: yt-dlp's own flat listing (in a warm download process, never in
   the service) for everything else yt-dlp can list.

Feeds are read over http(s) only, with a time limit and a size limit.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from ..connection_failures import unreached
from ..engine.archive import archive_id
from ..errors import AppError
from ..http_headers import header_problem
from ..http_statuses import said
from ..outbound import RefusedAddress, checked_session
from .feeds import Feed, FeedItem, NotAFeed, read_feed

FETCH_TIMEOUT = 20.0
MAX_FEED_BYTES = 10 * 1024 * 1024
USER_AGENT = "appliance (feed reader)"
YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com",
                           "music.youtube.com"})
CHANNEL_ID = re.compile(r"UC[\w-]{22}")
_PAGE_CHANNEL_ID = (
    re.compile(r'<meta itemprop="(?:identifier|channelId)" content="(UC[\w-]{22})"'),
    re.compile(r'<link rel="canonical" href="[^"]*/channel/(UC[\w-]{22})"'),
    re.compile(r'"(?:channelId|externalId|browseId)":"(UC[\w-]{22})"'),
)
FEED_SUFFIXES = (".rss", ".atom", ".rdf")
FEED_SEGMENTS = frozenset({"feed", "feeds", "rss", "atom"})
MEDIA_TYPES = ("video/", "audio/")


class HandlerError(Exception):
    """The handler could not list the entries (the text says why, for a person)."""


@dataclasses.dataclass
class Entry:
    url: str
    title: str = ""
    # yt-dlp's archive line (``youtube dQw4w9WgXcQ``) when the handler knows it.
    archive_id: str = ""
    published: float | None = None  # a timestamp, when the source says

    def keys(self) -> set[str]:
        """What the entry is known by in archives, marks and earlier items."""
        return {k for k in (self.url, self.archive_id) if k}

    def public(self, handler: str, source: str) -> dict[str, Any]:
        return {"url": self.url, "title": self.title, "archive_id": self.archive_id or None,
                "published": self.published,
                "metadata": {"source_id": source, "source_name": source,
                             "source_handler": handler}}


@dataclasses.dataclass
class Listing:
    title: str
    entries: list[Entry]


def fetch(url: str, timeout: float = FETCH_TIMEOUT) -> bytes:
    return fetch_request(url, timeout=timeout)


# RFC 9110 token characters: what a header name may be made of.


def fetch_request(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
                  params: dict[str, str] | None = None, body: Any = None,
                  timeout: float = FETCH_TIMEOUT) -> bytes:
    """The body at ``url`` (http(s) only, at most MAX_FEED_BYTES), or HandlerError."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:  # "http://[::1": not an address at all
        scheme = ""
    if scheme not in {"http", "https"}:
        raise HandlerError(f"{url[:200]} is not an http(s) address.")
    headers = {name: value.strip(" \t") for name, value in (headers or {}).items()}
    for name, value in headers.items():
        # Checked here too: a definition saved before headers were checked on save.
        if (problem := header_problem(name, value)) is not None:
            raise HandlerError(f"request header {name[:100]!r}: its {problem[0]} "
                               f"{problem[1]}.")
    import requests  # with the first task's fetch, not with the service (~15 MB)

    sent = {"json": body} if isinstance(body, dict) else {"data": body}
    try:
        with checked_session("task requests") as session, session.request(
                method, url, timeout=timeout, stream=True, params=params,
                headers={"User-Agent": USER_AGENT, **headers}, **sent) as response:
            if response.status_code >= 400:
                words = said(response.status_code, response.reason or "")
                raise HandlerError(f"could not read {url[:200]}: {words}" if words else
                                   f"{url[:200]} answered HTTP {response.status_code}.")
            data = bytearray()
            for chunk in response.iter_content(64 * 1024):
                data += chunk
                if len(data) > MAX_FEED_BYTES:
                    raise HandlerError(f"{url[:200]} is larger than "
                                       f"{MAX_FEED_BYTES // (1024 * 1024)} MiB.")
            return bytes(data)
    except requests.Timeout:
        raise HandlerError(f"could not read {url[:200]}: no answer within {timeout:g} s "
                           f"(the site is slow or down).") from None
    except requests.RequestException as exc:
        # (requests' own text is a repr of its connection pool: the reason in words, else
        # the kind of failure)
        reason = unreached(str(exc)) or type(exc).__name__
        raise HandlerError(f"could not read {url[:200]}: {reason}") from None
    except RefusedAddress as exc:
        raise HandlerError(str(exc)) from None
    except (UnicodeError, ValueError) as exc:  # what requests and http.client leave raw
        raise HandlerError(f"could not send the request to {url[:200]}: {exc}") from None


def parse_feed(body: bytes, where: str) -> Feed:
    try:
        return read_feed(body)
    except NotAFeed as exc:
        raise HandlerError(f"{where[:200]} is not a feed: {exc}.") from None


def _media_url(item: FeedItem) -> str:
    """An enclosure that is media (a podcast's file), else the entry's page."""
    media = next((url for url, kind in item.enclosures if kind.startswith(MEDIA_TYPES)), "")
    return media or item.link or next((url for url, _ in item.enclosures), "")


class Handler:
    name = "Handler"

    def can_handle(self, url: str) -> bool:
        raise NotImplementedError

    def list(self, url: str, preset: str, timeout: float = FETCH_TIMEOUT) -> Listing:
        raise NotImplementedError


class YoutubeHandler(Handler):
    name = "YoutubeHandler"

    def __init__(self, base_url: Callable[[], str]) -> None:
        self._base_url = base_url

    @staticmethod
    def _kind(url: str) -> tuple[str, str] | None:
        """(feed parameter, value) or ("page", path) for a handle that needs the page."""
        parts = urlsplit(url)
        if (parts.hostname or "").lower() not in YOUTUBE_HOSTS:
            return None
        segments = [s for s in parts.path.split("/") if s]
        playlist = parse_qs(parts.query).get("list")
        if segments[:1] == ["playlist"] and playlist:
            return "playlist_id", playlist[0]
        if len(segments) >= 2 and segments[0] == "channel" and CHANNEL_ID.fullmatch(segments[1]):
            return "channel_id", segments[1]
        if len(segments) >= 2 and segments[0] == "user":
            return "user", segments[1]
        if segments and (segments[0].startswith("@") or segments[0] == "c") and (
                len(segments) >= 2 or segments[0] != "c"):
            handle = segments[0] if segments[0].startswith("@") else "/".join(segments[:2])
            return "page", handle
        return None

    def can_handle(self, url: str) -> bool:
        return self._kind(url) is not None

    def feed_url(self, url: str, timeout: float = FETCH_TIMEOUT) -> str:
        kind = self._kind(url)
        if kind is None:
            raise HandlerError("not a YouTube channel or playlist address.")
        base = self._base_url().rstrip("/") + "/"
        param, value = kind
        if param == "page":
            page = fetch(urljoin(base, value), timeout).decode("utf-8", "replace")
            found = next((m.group(1) for p in _PAGE_CHANNEL_ID if (m := p.search(page))), None)
            if found is None:
                raise HandlerError(f"could not find the channel id of {value} on its page.")
            param, value = "channel_id", found
        return urljoin(base, "feeds/videos.xml") + "?" + urlencode({param: value})

    def list(self, url: str, preset: str, timeout: float = FETCH_TIMEOUT) -> Listing:
        where = self.feed_url(url, timeout)
        feed = parse_feed(fetch(where, timeout), where)
        entries = []
        for item in feed.items:
            video_id = item.video_id
            link = item.link or (
                f"https://www.youtube.com/watch?v={video_id}" if video_id else "")
            if link:
                entries.append(Entry(url=link, title=item.title,
                                     archive_id=f"youtube {video_id}" if video_id else "",
                                     published=item.published))
        return Listing(feed.title, entries)


class RssHandler(Handler):
    name = "RssHandler"

    def can_handle(self, url: str) -> bool:
        parts = urlsplit(url)
        if "handler=rss" in parts.fragment:
            return True
        path = parts.path.lower()
        segments = {s.rsplit(".", 1)[0] for s in path.split("/") if s}
        return path.endswith(FEED_SUFFIXES) or bool(segments & FEED_SEGMENTS)

    def list(self, url: str, preset: str, timeout: float = FETCH_TIMEOUT) -> Listing:
        where = url.split("#", 1)[0]
        feed = parse_feed(fetch(where, timeout), where)
        entries = [Entry(url=urljoin(where, link), title=item.title, published=item.published)
                   for item in feed.items if (link := _media_url(item))]
        return Listing(feed.title, entries)


class GenericTaskHandler(Handler):
    """yt-dlp's flat listing, run by the engine in a warm download process."""

    name = "GenericTaskHandler"

    def __init__(self, list_entries: Callable[[str, str], dict[str, Any]]) -> None:
        self._list_entries = list_entries

    def can_handle(self, url: str) -> bool:
        return True

    def list(self, url: str, preset: str, timeout: float = FETCH_TIMEOUT) -> Listing:
        try:
            summary = self._list_entries(url, preset or "default")
        except AppError as exc:
            raise HandlerError(exc.message) from None
        if summary.get("_type") != "playlist":  # one video: the URL is its only entry
            key = summary.get("extractor_key") or summary.get("extractor") or ""
            video_id = str(summary.get("id") or "")
            page = summary.get("webpage_url") or url
            archive = archive_id(key, video_id, page) or ""
            return Listing(str(summary.get("title") or ""),
                           [Entry(page, str(summary.get("title") or ""), archive)])
        entries = []
        for entry in summary.get("entries") or []:
            key, video_id = entry.get("ie_key") or "", str(entry.get("id") or "")
            archive = archive_id(key, video_id, entry["url"]) or ""
            entries.append(Entry(entry["url"], entry.get("title") or "", archive))
        return Listing(str(summary.get("title") or ""), entries)


class Handlers:
    def __init__(self, handlers: list[Handler]) -> None:
        self.handlers = handlers

    def by_name(self, name: str) -> Handler | None:
        return next((h for h in self.handlers if h.name.lower() == name.lower()), None)

    def choose(self, url: str) -> Handler:
        return next(h for h in self.handlers if h.can_handle(url))
