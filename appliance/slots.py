"""Bounds on the work that lasts: files being sent, live streams, the player's ffmpeg and
ffprobe processes, requests that wait on other servers.

An answer of those kinds holds one of the HTTP worker's request threads for as long as the
client reads it (or the process runs). Each kind has a bound, and the worker has a thread for
every place of every bound on top of the eight that answer everything else
(``appliance.server.request_threads``): a house playing films, copying a season to a laptop
and watching the log stream still gets its queue page at once.

A request over a bound waits ``wait`` seconds for a place (its thread held meanwhile: files
and requests to other servers do not wait), then gets 503 with ``Retry-After`` and a text
saying what is busy. A body that holds a place (``HeldBody``, ``HeldFile``) gives it back
when it ends or when the server closes it (a client gone mid-answer): gunicorn calls
``close()`` on every body it was given, sent whole or not.

A bound may also have a ``share``: the places one client (its address, as the login throttle
knows it) may hold. A download manager opening 16 connections for one file would otherwise
take every transfer, and the television's film would get 503; over its share, a client gets
429 at once with the ``over_share`` text.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from . import errors

SLOT_WAIT = 3.0
# The kinds whose bound is not a setting: remote images fetched for a client (each may take
# the fetcher's 10 s), and requests that wait on another server (a URL's info, a task's
# preview, marks and pictures, a notification test, the update check).
IMAGE_FETCHES = 3
OUTSIDE_WAITS = 4


class Slots:
    def __init__(self, count: int, busy: str, *, wait: float | None = None,
                 retry_after: int = 2, share: int | None = None, over_share: str = "") -> None:
        self.count = count
        self.busy = busy  # the 503's text
        self.wait = SLOT_WAIT if wait is None else wait
        self.retry_after = retry_after
        self.share = share
        self.over_share = over_share  # the 429's text
        self._taken = 0
        self._holders: Counter[str] = Counter()
        self._freed = threading.Condition()

    @property
    def taken(self) -> int:
        with self._freed:
            return self._taken

    def take(self, holder: str | None = None) -> None:
        """A place, within ``wait`` seconds; else 503 (the request has started nothing). With a
        ``share``, ``holder`` (a client's address) already holding that many: 429 at once."""
        deadline = time.monotonic() + self.wait
        with self._freed:
            if holder is not None and self.share is not None \
                    and self._holders[holder] >= self.share:
                raise errors.AppError(self.over_share, errors.TOO_MANY_REQUESTS,
                                      headers={"Retry-After": str(self.retry_after)})
            while self._taken >= self.count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise errors.AppError(self.busy, errors.UNAVAILABLE,
                                          headers={"Retry-After": str(self.retry_after)})
                self._freed.wait(left)
            self._taken += 1
            if holder is not None:
                self._holders[holder] += 1

    def give_back(self, holder: str | None = None) -> None:
        with self._freed:
            if self._taken <= 0 or (holder is not None and self._holders[holder] <= 0):
                raise RuntimeError(f"a place was given back that was not taken: {self.busy}")
            self._taken -= 1
            if holder is not None:
                self._holders[holder] -= 1
                if not self._holders[holder]:
                    del self._holders[holder]
            self._freed.notify()

    def __enter__(self) -> Slots:
        """A place for the work of a ``with`` block (given back however it ends)."""
        self.take()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.give_back()


class _Place:
    """One place taken from ``slots`` (by ``holder``), given back once however often it is let
    go."""

    def __init__(self, slots: Slots, holder: str | None) -> None:
        self._slots: Slots | None = slots
        self._holder = holder
        self._lock = threading.Lock()

    def let_go(self) -> None:
        with self._lock:
            slots, self._slots = self._slots, None
        if slots is not None:
            slots.give_back(self._holder)


class HeldBody:
    """A WSGI body (an iterable of bytes) holding a place: given back as soon as the body
    ends, and by ``close()`` in any case (even when the body was never iterated)."""

    def __init__(self, body: Iterable[bytes], slots: Slots, holder: str | None = None) -> None:
        self._body = body
        self._place = _Place(slots, holder)
        self._running: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        if self._running is None:
            self._running = self._run()
        return self._running

    def _run(self) -> Iterator[bytes]:
        try:
            yield from self._body
        finally:
            self._place.let_go()

    def close(self) -> None:
        try:
            for part in (self._running, self._body):
                close = getattr(part, "close", None)
                if close is not None:
                    close()
        finally:
            self._place.let_go()

    def __del__(self) -> None:  # a body never handed to the server still gives its place back
        self._place.let_go()


class HeldFile:
    """A file being sent, holding a place until the server closes it. It is the file to
    Falcon and gunicorn (``read``, ``fileno``…), so the kernel still sends it (sendfile)."""

    def __init__(self, file: Any, slots: Slots, holder: str | None = None) -> None:
        self._file = file
        self._place = _Place(slots, holder)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self._place.let_go()

    def __del__(self) -> None:
        self._place.let_go()
