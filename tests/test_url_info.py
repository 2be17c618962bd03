"""``GET /api/yt-dlp/url/info``'s cache is bounded by what it holds, not only by its count:
a full info is up to a few MB (a site makes one of any size), and expired entries leave."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from falcon.testing import TestClient
from support.origin import MediaOrigin

from appliance.engine import info as url_info
from appliance.runtime import Runtime


def _status(client: TestClient, url: str) -> str:
    answer = client.simulate_get("/api/yt-dlp/url/info", params={"url": url})
    assert answer.status_code == 200, answer.text
    return answer.json["_cached"]["status"]


def _sizes(rt: Runtime) -> list[int]:
    return [size for _, _, size in rt.url_info._cache.values()]


def test_expired_infos_leave_the_cache(app_with: Callable[..., Any], origin: MediaOrigin
                                       ) -> None:
    rt, client = app_with(YTP_URL_INFO_CACHE_TTL="0")  # every entry expires at once
    for name in ("clip", "clip2", "short", "clip"):
        answer = client.simulate_get("/api/yt-dlp/url/info",
                                     params={"url": origin.watch_url(name)}).json["_cached"]
        assert (answer["status"], answer["preset"], answer["ttl"], answer["ttl_left"]) == (
            "miss", "default", 0, 0)
        assert len(rt.url_info._cache) == 1  # the latest only: the others had expired
    assert rt.url_info._bytes == sum(_sizes(rt))


def test_the_cache_holds_at_most_its_bytes(
        app_with: Callable[..., Any], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rt, client = app_with()
    first, second = origin.watch_url("clip"), origin.watch_url("clip2")
    assert (_status(client, first), _status(client, second)) == ("miss", "miss")
    sizes = _sizes(rt)
    assert sizes == [len(json.dumps(kept)) for _, kept, _ in rt.url_info._cache.values()]
    monkeypatch.setattr(url_info, "MAX_BYTES", max(sizes) + 10)  # room for one of them
    forced = client.simulate_get("/api/yt-dlp/url/info", params={"url": first, "force": "1"})
    assert forced.json["_cached"]["status"] == "miss"  # kept again: the other makes room
    assert len(_sizes(rt)) == 1 and rt.url_info._bytes == sum(_sizes(rt))
    assert _status(client, first) == "hit"
    assert _status(client, second) == "miss"
    assert _status(client, first) == "miss"
    monkeypatch.setattr(url_info, "MAX_BYTES", 10)  # an info larger than the whole cache
    assert _status(client, second) == "miss"
    assert _status(client, second) == "miss"  # was not kept
    assert _status(client, first) == "hit"  # and pushed nothing out


def test_a_forced_read_replaces_its_entry(app_with: Callable[..., Any], origin: MediaOrigin
                                          ) -> None:
    rt, client = app_with()
    url = origin.watch_url("short")
    assert _status(client, url) == "miss"
    forced = client.simulate_get("/api/yt-dlp/url/info", params={"url": url, "force": "true"})
    assert forced.json["_cached"]["status"] == "miss"
    assert len(rt.url_info._cache) == 1 and rt.url_info._bytes == sum(_sizes(rt))
    assert _status(client, url) == "hit"


def test_the_cache_holds_at_most_its_entries_and_says_what_it_read(
        app_with: Callable[..., Any], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rt, client = app_with()
    monkeypatch.setattr(url_info, "MAX_ENTRIES", 2)
    urls = [origin.watch_url(name) for name in ("clip", "clip2", "short")]
    for url in urls:
        answer = client.simulate_get("/api/yt-dlp/url/info",
                                     params={"url": url, "preset": "media-server-tv"}).json
        assert (answer["_cached"]["status"], answer["_cached"]["preset"]) == (
            "miss", "media-server-tv")
    assert len(rt.url_info._cache) == 2
    hit = client.simulate_get("/api/yt-dlp/url/info",
                              params={"url": urls[2], "preset": "media-server-tv"}).json
    cached = hit["_cached"]
    assert (cached["status"], cached["preset"], cached["cli_args"]) == (
        "hit", "media-server-tv", "")
    assert 0 < cached["ttl_left"] <= cached["ttl"] == rt.settings.url_info_cache_ttl
    assert cached["expires"] == pytest.approx(time.time() + cached["ttl_left"], abs=5)
    assert _status(client, urls[2]) == "miss"  # the default preset's is another entry
    assert len(rt.url_info._cache) == 2
