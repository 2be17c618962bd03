"""Handlers that read their page or feed in a download process, not in the service.

Reading a feed -- the fetch, lxml (or feedparser), the entries built from it -- is Python
CPU: in the service's worker it holds the interpreter lock that the API's threads need, and
500 feeds due in the same minute made the API's p99 several times its idle figure
(``bench/tasks_scale.py``). So the handlers that fetch and parse themselves (YouTube feeds,
RSS/Atom, task definitions) run there through the engine's ``call`` (a warm process forked
from the zygote), and the worker gets back a compact listing: the title, and url, title,
archive id and publication time per entry, bounded, so that a hostile feed costs the
service no more than a normal one. Which handler matches a URL is still decided in the
worker: that is a few string tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .definitions import DefinitionHandler
from .handlers import (
    FETCH_TIMEOUT,
    Entry,
    Handler,
    HandlerError,
    Handlers,
    Listing,
    RssHandler,
    YoutubeHandler,
)

# The function a download process runs (``engine.Jobs.call``).
TARGET = f"{__name__}:list_in_child"
# What a listing may bring back: a feed of more entries is cut (newest first, as feeds are).
MAX_ENTRIES = 5000
MAX_TITLE = 1000
# Fetches a handler may make for one listing (a YouTube @handle: its page, then its feed).
FETCHES = 2

# (handler name, url, preset, fetch timeout) -> the JSON ``list_in_child`` returned
ListCall = Callable[[str, str, str, float], dict[str, Any]]


def reading_handlers(base_url: Callable[[], str],
                     definitions: Callable[[], list[dict[str, Any]]]) -> list[Handler]:
    """The handlers that read what they list themselves, in the order they are tried."""
    return [YoutubeHandler(base_url), RssHandler(), DefinitionHandler(definitions)]


def list_in_child(handler: str, url: str, preset: str, timeout: float, base_url: str,
                  definitions: list[dict[str, Any]]) -> dict[str, Any]:
    """Run in a download process: ``handler``'s listing of ``url`` as JSON, or its error."""
    chosen = Handlers(reading_handlers(lambda: base_url, lambda: definitions)).by_name(handler)
    if chosen is None:
        return {"error": f"no handler is named {handler[:100]!r}."}
    try:
        listing = chosen.list(url, preset, timeout)
    except HandlerError as exc:
        return {"error": str(exc)}
    return {"title": listing.title[:MAX_TITLE],
            "entries": [[e.url, e.title[:MAX_TITLE], e.archive_id, e.published]
                        for e in listing.entries[:MAX_ENTRIES]]}


def call_timeout(fetch_timeout: float, limit: float) -> float:
    """Seconds a listing may take before its process is killed: its fetches' time limits
    (each one a limit per read: a feed that trickles would pass them) within ``limit``."""
    return min(limit, FETCHES * fetch_timeout + 5.0)


class Isolated(Handler):
    """``inner``, whose listing runs in a download process through ``call``."""

    def __init__(self, inner: Handler, call: ListCall) -> None:
        self.inner = inner
        self.name = inner.name
        self._call = call

    def can_handle(self, url: str) -> bool:
        return self.inner.can_handle(url)

    def list(self, url: str, preset: str, timeout: float = FETCH_TIMEOUT) -> Listing:
        answer = self._call(self.name, url, preset, timeout)
        if answer.get("error"):
            raise HandlerError(str(answer["error"]))
        return Listing(str(answer.get("title") or ""), [
            Entry(url, title, archive_id, published)
            for url, title, archive_id, published in answer.get("entries") or []])
