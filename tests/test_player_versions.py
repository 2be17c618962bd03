"""A file of the download folder replaced under its name while browsers keep what they played
of it: a video downloaded again, a better format taking the old one's name. In process, on
real files and the real ffmpeg/ffprobe.

Segments are cached for good (a year, never asked again) so that a seek back costs no ffmpeg;
that is right only for a URL that names one version of the file. The playlists name it; a URL
that names none, or an old one, is asked again each time (its ETag makes that cheap)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import runtime_of_module
from falcon.testing import TestClient

from appliance.api import player as player_api
from appliance.api.app import create_app
from appliance.runtime import Runtime

pytestmark = pytest.mark.xdist_group("player")

FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-y"]


def clip(path: Path, pattern: str) -> None:
    """3 s of H.264 (copied by the player: one segment), drawn by ``pattern``."""
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", f"{pattern}=size=160x120:rate=25", "-t", "3",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    str(path)], check=True, timeout=120)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    for runtime in runtime_of_module(tmp_path_factory, "player-versions"):
        yield runtime, TestClient(create_app(runtime))


def segment_urls(client: TestClient, name: str) -> list[str]:
    video = client.simulate_get(f"/api/player/m3u8/video/{name}.m3u8")
    assert video.status_code == 200, video.text
    return [line for line in video.text.splitlines() if line.startswith("/api/player/segments/")]


def get(client: TestClient, url: str, **headers: str) -> tuple[int, str, bytes]:
    path, _, query = url.partition("?")
    answer = client.simulate_get(path, query_string=query, headers=headers)
    return answer.status_code, answer.headers.get("cache-control", ""), answer.content


def test_a_file_replaced_under_its_name_gets_new_segment_urls(
        app: tuple[Runtime, TestClient]) -> None:
    """The same length, the same codec, the same plan: before, the same playlist and the same
    segment URLs, under which the browser had the old video's segments for a year (and its
    playlist's ETag said nothing had changed)."""
    runtime, client = app
    root = runtime.settings.download_path
    clip(root / "show.mp4", "testsrc")
    [before] = segment_urls(client, "show.mp4")
    assert re.search(r"&v=[0-9a-f]{24}$", before), before
    status, kept, first = get(client, before)
    assert status == 200 and first
    assert kept == player_api.KEPT
    assert "private" in kept and "public" not in kept and "max-age=31536000" in kept
    playlist = client.simulate_get("/api/player/m3u8/video/show.mp4.m3u8")

    clip(root / "next.mp4", "smptebars")
    os.replace(root / "next.mp4", root / "show.mp4")  # as yt-dlp puts a finished file
    [after] = segment_urls(client, "show.mp4")
    assert after != before
    assert client.simulate_get("/api/player/m3u8/video/show.mp4.m3u8", headers={
        "If-None-Match": playlist.headers["etag"]}).status_code == 200
    status, kept, second = get(client, after)
    assert status == 200 and kept == player_api.KEPT and second != first
    # a playlist read before the replacement, a URL without a version: the file as it is now,
    # never kept for good under that URL
    for url in (before, re.sub(r"&v=[0-9a-f]+$", "", after), after.replace("&v=", "&v=0")):
        status, asked_again, body = get(client, url)
        assert (status, asked_again, body) == (200, player_api.ASKED_AGAIN, second), url


def test_a_kept_segment_is_still_validated(app: tuple[Runtime, TestClient]) -> None:
    """Its ETag answers a conditional request with 304 (no ffmpeg) while the file is the same,
    with the segment once the file changed."""
    runtime, client = app
    root = runtime.settings.download_path
    clip(root / "tag.mp4", "testsrc")
    [url] = segment_urls(client, "tag.mp4")
    path, _, query = url.partition("?")
    first = client.simulate_get(path, query_string=query)
    etag = first.headers["etag"]
    again = client.simulate_get(path, query_string=query, headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.content
    assert again.headers["cache-control"] == player_api.KEPT
    clip(root / "tag.mp4", "smptebars")
    changed = client.simulate_get(path, query_string=query, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.content and changed.headers["etag"] != etag
    assert changed.headers["cache-control"] == player_api.ASKED_AGAIN
