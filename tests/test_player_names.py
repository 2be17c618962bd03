"""Files whose names are not UTF-8 (Latin-1 bytes an old tool or a copied folder wrote), played
in process on the real ffmpeg: the player's URLs name them by their bytes, percent-encoded
(``caf%E9.mp4``), as a URL carries any byte; the route reads the bytes as sent (falcon reads
them as U+FFFD), and the path is checked as any other (no ``..``, inside the folder on its
final form). JSON never carries such a name (the file browser leaves it out): an error that
names it writes its bytes as ``\\udcXX``."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from urllib.parse import unquote_to_bytes, urlsplit

import pytest
from conftest import runtime_of_module
from falcon.testing import Result, TestClient
from support.server import wait_for

from appliance.api.app import create_app
from appliance.runtime import Runtime

pytestmark = pytest.mark.xdist_group("player")

TRACK = 'URI="/api/player/m3u8/subtitle/caf%E9.en.srt.m3u8?duration='
SRT = "1\n00:00:01,000 --> 00:00:02,000\nCafé crème\n"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    for runtime in runtime_of_module(tmp_path_factory, "player-names"):
        root = os.fsencode(runtime.settings.download_path)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i",
                        "sine=frequency=440", "-t", "8", "-c:v", "libx264", "-preset",
                        "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac",
                        root + b"/caf\xe9.mp4"], check=True, timeout=120)
        with open(root + b"/caf\xe9.en.srt", "wb") as sub:
            sub.write(SRT.encode("cp1252"))
        with open(root + b"/broken\xe9.mp4", "wb") as broken:
            broken.write(b"no media here" * 100)
        client = TestClient(create_app(runtime))
        # a subtitle's track comes from the file index, which sees the files written after
        # the start a moment later (failed once under CI's load)
        wait_for(lambda c=client: TRACK in get(c, "/api/player/playlist/caf%E9.mp4.m3u8").text,
                 timeout=30, message="the subtitle's track in the master playlist")
        yield runtime, client


def get(client: TestClient, url: str) -> Result:
    """``url`` (percent-encoded) as a WSGI server hands it over: its path's bytes, decoded
    from the percent signs, tunneled as Latin-1 (PEP 3333)."""
    parts = urlsplit(url)
    return client.simulate_get("/", query_string=parts.query or None, extras={
        "PATH_INFO": unquote_to_bytes(parts.path).decode("latin-1")})


def test_a_latin1_name_plays_with_its_subtitles(app: tuple[Runtime, TestClient]) -> None:
    """Before, every route answered 404 ("a name the API cannot name"): such a file could not
    be played nor its subtitles found."""
    runtime, client = app
    master = get(client, "/api/player/playlist/caf%E9.mp4.m3u8")
    assert master.status_code == 200, master.text
    assert "/api/player/m3u8/video/caf%E9.mp4.m3u8" in master.text.splitlines()
    assert TRACK in master.text
    video = get(client, "/api/player/m3u8/video/caf%E9.mp4.m3u8")
    assert video.status_code == 200, video.text
    urls = [line for line in video.text.splitlines() if line.startswith("/api/")]
    assert len(urls) == 2 and all(u.startswith(f"/api/player/segments/{i}/caf%E9.mp4.ts?")
                                  for i, u in enumerate(urls)), urls
    for url in urls:
        segment = get(client, url)
        assert segment.status_code == 200, segment.text
        codecs = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                                 "stream=codec_name", "-of", "csv=p=0", "-"],
                                input=segment.content, capture_output=True, timeout=60,
                                check=True).stdout.decode().split()
        assert set(codecs) == {"h264", "aac"}
    subtitle = get(client, "/api/player/m3u8/subtitle/caf%E9.en.srt.m3u8?duration=8")
    assert subtitle.status_code == 200, subtitle.text
    assert "/api/player/subtitle/caf%E9.en.srt.vtt" in subtitle.text.splitlines()
    vtt = get(client, "/api/player/subtitle/caf%E9.en.srt.vtt")
    assert vtt.status_code == 200, vtt.text
    assert "Café crème" in vtt.content.decode()
    assert runtime.player.slots.taken == 0


def test_a_latin1_name_that_ffprobe_cannot_read_is_said_in_json(
        app: tuple[Runtime, TestClient]) -> None:
    """The error names the file, its byte as \\udcXX: JSON cannot carry the lone surrogate
    Python holds it with (orjson refused it: a 500)."""
    _, client = app
    answer = get(client, "/api/player/playlist/broken%E9.mp4.m3u8")
    assert answer.status_code == 400, answer.text
    assert "'broken\\udce9.mp4'" in answer.json["error"], answer.json
    missing = get(client, "/api/player/playlist/gone%E9.mp4.m3u8")
    assert missing.status_code == 404, missing.text
    assert missing.json["error"] == "File 'gone\\udce9.mp4' does not exist."


def test_a_name_sent_by_its_bytes_is_still_confined(app: tuple[Runtime, TestClient],
                                                   tmp_path_factory: pytest.TempPathFactory
                                                   ) -> None:
    """Traversal in the bytes (``..``, an encoded slash), a symlink with such a name leading
    out of the folder, a control character: refused as in any other path."""
    runtime, client = app
    root = os.fsencode(runtime.settings.download_path)
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.srt").write_text(SRT)
    os.symlink(os.fsencode(outside / "secret.srt"), root + b"/out\xe9.srt")
    for path, status in (("%E9/../../secret.srt.vtt", 400), ("%E9%2F..%2F..%2Fx.srt.vtt", 400),
                         ("out%E9.srt.vtt", 403), ("ctl%E9%0A.srt.vtt", 400),
                         ("..%2F%E9.srt.vtt", 400)):
        answer = get(client, f"/api/player/subtitle/{path}")
        assert answer.status_code == status, (path, answer.text)
        assert "Café" not in answer.text
    # its normal form is a redirect by its bytes
    again = get(client, "/api/player/subtitle//caf%E9.en.srt.vtt")
    assert again.status_code == 302, again.text
    assert again.headers["location"].endswith("/api/player/subtitle/caf%E9.en.srt.vtt")


def test_a_name_that_holds_the_replacement_mark_itself_is_found(
        app: tuple[Runtime, TestClient]) -> None:
    """U+FFFD in a valid UTF-8 name (a name an earlier decoding left so) is that name, not a
    sign of bytes to read again."""
    runtime, client = app
    (runtime.settings.download_path / "mark\ufffd.srt").write_text(SRT)
    answer = get(client, "/api/player/subtitle/mark%EF%BF%BD.srt.vtt")
    assert answer.status_code == 200, answer.text
    assert "Café crème" in answer.content.decode()


def test_a_latin1_subtitle_of_a_utf8_video_is_named_by_its_bytes(
        app: tuple[Runtime, TestClient]) -> None:
    """The master playlist named it as JSON does, encoded once more
    (``film.fran%25E7ais.srt``): found only by reading that back leniently, and a 409 once a
    file named ``film.fran%E7ais.srt`` in UTF-8 lay beside it, the player without subtitles.
    Its URL is its bytes now, the URL it is served at."""
    runtime, client = app
    root = os.fsencode(runtime.settings.download_path)
    shutil.copyfile(root + b"/caf\xe9.mp4", root + b"/film.mp4")
    with open(root + b"/film.fran\xe7ais.srt", "wb") as sub:
        sub.write(SRT.encode("cp1252"))
    wait_for(lambda: "film.fran\udce7ais.srt" in runtime.files.index.names(""), 10,
             message="the index to list the subtitle")
    master = get(client, "/api/player/playlist/film.mp4.m3u8")
    assert master.status_code == 200, master.text
    [uri] = [line.split('URI="')[1].rstrip('"') for line in master.text.splitlines()
             if "URI=" in line]
    assert uri == "/api/player/m3u8/subtitle/film.fran%E7ais.srt.m3u8?duration=8.000000"
    (runtime.settings.download_path / "film.fran%E7ais.srt").write_text("named so")
    playlist = get(client, uri)
    assert playlist.status_code == 200, playlist.text
    [vtt_url] = [line for line in playlist.text.splitlines() if line.startswith("/api/")]
    vtt = get(client, vtt_url)
    assert vtt.status_code == 200, vtt.text
    assert "Café crème" in vtt.content.decode()
