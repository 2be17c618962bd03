"""``GET /api/yt-dlp/url/info``: a URL's full info through a warm process, cached with a TTL.

Owners: the cache belongs to ``UrlInfo``'s lock (held only for the cache, never across an
extraction). Settings are read from the service's ``SettingsHolder`` when used (the number of
extractions at once is fixed when the service starts: it is not a setting the API changes)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..config import SettingsHolder
from ..errors import UNAVAILABLE, AppError
from .options import parse_cli
from .presets import Presets
from .requests import check_url

MAX_ENTRIES = 256
# What the cached infos may weigh together, as JSON. A video's full info (every format's URL,
# every caption language) is up to a few MB, and a site can make one of any size: 256 of them
# were kept for the worker's life (an entry left only when pushed out, expired or not).
MAX_BYTES = 32 * 1024 * 1024


class UrlInfo:
    def __init__(
        self, extract: Callable[[str, str, list[str]], dict[str, Any]], presets: Presets,
        settings: SettingsHolder,
    ) -> None:
        self._extract = extract
        self.presets = presets
        self.settings = settings
        self._slots = threading.BoundedSemaphore(settings.current.extract_info_concurrency)
        self._lock = threading.Lock()
        # key -> (expires, info, its size as JSON)
        self._cache: OrderedDict[str, tuple[float, dict[str, Any], int]] = OrderedDict()
        self._bytes = 0

    def get(self, url: Any, preset: str | None, args: str | None, force: bool) -> dict[str, Any]:
        url = check_url(url)
        preset = self.presets.check(preset) if preset else "default"
        cli = parse_cli(args or "")
        key = hashlib.sha256(f"{url}\0{preset}\0{cli.text}".encode()).hexdigest()
        now = time.time()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and not force and cached[0] > now:
                self._cache.move_to_end(key)
                return self._answer(cached[1], "hit", preset, cli.text, key, cached[0])
        if not self._slots.acquire(timeout=self.settings.current.extract_info_timeout):
            raise AppError("Too many info requests at once; try again shortly.", UNAVAILABLE)
        try:
            info = self._extract(url, preset, cli.args)
        finally:
            self._slots.release()
        expires = time.time() + self.settings.current.url_info_cache_ttl
        self._keep(key, (expires, info, len(json.dumps(info, default=str))))
        return self._answer(info, "miss", preset, cli.text, key, expires)

    def _keep(self, key: str, entry: tuple[float, dict[str, Any], int]) -> None:
        """Cache ``entry`` (one larger than the whole cache is not) with the expired entries
        dropped and the least recently used ones beyond the bounds."""
        with self._lock:
            now = time.time()
            for gone in [k for k, kept in self._cache.items() if k == key or kept[0] <= now]:
                self._bytes -= self._cache.pop(gone)[2]
            if entry[2] > MAX_BYTES:
                return
            self._cache[key] = entry
            self._bytes += entry[2]
            while len(self._cache) > MAX_ENTRIES or self._bytes > MAX_BYTES:
                self._bytes -= self._cache.popitem(last=False)[1][2]

    def _answer(
        self, info: dict[str, Any], status: str, preset: str, cli: str, key: str, expires: float
    ) -> dict[str, Any]:
        return {
            **info,
            "_cached": {
                "status": status,
                "preset": preset,
                "cli_args": cli,
                "key": key,
                "ttl": self.settings.current.url_info_cache_ttl,
                "ttl_left": round(max(0.0, expires - time.time()), 2),
                "expires": expires,
            },
        }
