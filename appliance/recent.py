"""A bounded memory of recent answers, each for a while: a password verified moments ago
(``auth/checker.py``), a subtitle file ffmpeg refused lately (``player/subtitles.py``)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most ``limit`` answers, each for ``ttl`` seconds of ``clock`` from when it was kept;
    over the limit, the one kept longest ago goes. Thread-safe."""

    def __init__(self, ttl: float, limit: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.limit = limit
        self.clock = clock
        self._lock = threading.Lock()
        self._kept: OrderedDict[K, tuple[float, V]] = OrderedDict()  # key -> (until, answer)

    def __len__(self) -> int:
        return len(self._kept)

    def __iter__(self) -> Iterator[K]:
        """The keys kept (their time over or not), oldest first."""
        with self._lock:
            return iter(list(self._kept))

    def get(self, key: K) -> V | None:
        """The answer kept for ``key``, or None (never kept, pushed out, or its time over)."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            if self.clock() < kept[0]:
                return kept[1]
            del self._kept[key]
            return None

    def keep(self, key: K, answer: V) -> None:
        with self._lock:
            self._kept.pop(key, None)
            self._kept[key] = (self.clock() + self.ttl, answer)
            while len(self._kept) > self.limit:
                self._kept.popitem(last=False)
