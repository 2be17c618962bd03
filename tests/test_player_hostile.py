"""Hostile files in the download folder against the player and the probe endpoints, in
process on real files and the real ffmpeg/ffprobe: playlists and concat lists dressed as
media (ffmpeg picks its demuxer from the content, and those demuxers open other files), and
the media formats the player plays, which must still play; a file swapped for a symlink or
a FIFO between the API's check and ffmpeg's read; the bound on ffprobe processes."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from conftest import make_settings, started
from falcon.testing import Result, TestClient
from support.server import wait_for

from appliance.api import files as files_api
from appliance.api import player as player_api
from appliance.api.app import create_app
from appliance.files import reading
from appliance.player import playlists, probe, subtitles
from appliance.runtime import Runtime

pytestmark = pytest.mark.xdist_group("player")

FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
SECRET = "OUTSIDE-SECRET"
AV = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i",
      "sine=frequency=440", "-t", "2"]
A = ["-f", "lavfi", "-i", "sine=frequency=440", "-t", "2"]
# One file per container of the player's demuxer whitelist: each must still probe and play.
PLAYABLE = {
    "h264.mp4": [*AV, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                 "-c:a", "aac"],
    "mpeg4.mkv": [*AV, "-c:v", "mpeg4", "-c:a", "libmp3lame"],
    "vp9.webm": [*AV, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-c:a", "libopus"],
    "mpeg4.avi": [*AV, "-c:v", "mpeg4", "-c:a", "libmp3lame"],
    "flv1.flv": [*AV, "-c:v", "flv", "-c:a", "libmp3lame", "-ar", "44100"],
    "mpeg2.mpg": [*AV, "-c:v", "mpeg2video", "-c:a", "mp2"],
    "mpeg2.ts": [*AV, "-c:v", "mpeg2video", "-c:a", "mp2"],
    "wmv2.wmv": [*AV, "-c:v", "wmv2", "-c:a", "wmav2"],
    "tone.mp3": [*A, "-c:a", "libmp3lame"],
    "tone.m4a": [*A, "-c:a", "aac"],
    "tone.aac": [*A, "-c:a", "aac"],
    "tone.ogg": [*A, "-c:a", "libvorbis"],
    "tone.opus": [*A, "-c:a", "libopus"],
    "tone.flac": [*A, "-c:a", "flac"],
    "tone.wav": [*A, "-c:a", "pcm_s16le"],
}


def ffmpeg(*args: str) -> None:
    subprocess.run([*FFMPEG, *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Media and subtitles outside the download folder, each carrying SECRET."""
    folder = tmp_path_factory.mktemp("outside")
    ffmpeg(*A, "-metadata", f"title={SECRET}", "-c:a", "libmp3lame",
           str(folder / "private.mp3"))
    ffmpeg(*AV, "-metadata", f"service_name={SECRET}", "-c:v", "mpeg2video", "-c:a", "mp2",
           str(folder / "secret2.ts"))
    (folder / "secret.srt").write_text(f"1\n00:00:00,000 --> 00:00:02,000\n{SECRET}\n")
    return folder


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, outside: Path
        ) -> Iterator[tuple[Runtime, TestClient]]:
    runtime = started(make_settings(tmp_path_factory.mktemp("hostile")))
    root = runtime.settings.download_path
    for name, args in PLAYABLE.items():
        ffmpeg(*args, str(root / name))
    # F2: an HLS playlist and ffconcat lists named as media and subtitles, naming files
    # outside the folder (by URL, or through a symlinked folder inside it)
    hls = "#EXTM3U\n#EXT-X-TARGETDURATION:5\n#EXTINF:5.0,\n{}\n#EXT-X-ENDLIST\n"
    (root / "aud_hls.mp4").write_text(hls.format(f"file://{outside}/private.mp3"))
    (root / "lnk").symlink_to(outside)
    (root / "cat.mp4").write_text("ffconcat version 1.0\nfile lnk/secret2.ts\n")
    (root / "cat.en.srt").write_text("ffconcat version 1.0\nfile lnk/secret.srt\n")
    (root / "hls.en.srt").write_text(hls.format(f"file://{outside}/secret.srt"))
    yield runtime, TestClient(create_app(runtime))
    runtime.stop()


def refused(result: Result, says: str = "not a playable media file") -> None:
    assert result.status_code == 400, result.text
    assert says in result.json["error"], result.json
    assert result.json["code"] == "INVALID_REQUEST"
    assert SECRET not in result.text


@pytest.mark.parametrize("name", ["aud_hls.mp4", "cat.mp4"])
def test_playlists_dressed_as_media_are_refused(app: tuple[Runtime, TestClient],
                                                name: str) -> None:
    _, client = app
    probed = client.simulate_get(f"/api/file/ffprobe/{name}")
    refused(probed)
    assert probed.json["error"] == (f"'{name}' is not a playable media file (its content is "
                                    "not an audio or video format the player opens).")
    info = client.simulate_get(f"/api/file/info/{name}")
    assert info.status_code == 200 and info.json["ffprobe"] == {}
    assert SECRET not in info.text
    for route in (f"playlist/{name}.m3u8", f"m3u8/video/{name}.m3u8",
                  f"segments/0/{name}.ts"):
        refused(client.simulate_get(f"/api/player/{route}"))


@pytest.mark.parametrize("name", ["cat.en.srt", "hls.en.srt"])
def test_playlists_dressed_as_subtitles_are_refused(app: tuple[Runtime, TestClient],
                                                    name: str) -> None:
    _, client = app
    refused(client.simulate_get(f"/api/player/subtitle/{name}.vtt"),
            "not a subtitle file the player plays")


@pytest.mark.parametrize("name", sorted(PLAYABLE))
def test_media_the_player_plays_still_plays(app: tuple[Runtime, TestClient],
                                            name: str) -> None:
    _, client = app
    probed = client.simulate_get(f"/api/file/ffprobe/{name}")
    assert probed.status_code == 200, probed.text
    assert float(probed.json["format"]["duration"]) == pytest.approx(2, abs=0.2)
    assert client.simulate_get(f"/api/player/playlist/{name}.m3u8").status_code == 200
    segment = client.simulate_get(f"/api/player/segments/0/{name}.ts")
    assert segment.status_code == 200, segment.text
    decoded = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type",
                              "-of", "csv=p=0", "-"], input=segment.content,
                             capture_output=True, timeout=60, check=True)
    kinds = set(decoded.stdout.decode().split())
    assert "audio" in kinds and ("video" in kinds or name.startswith("tone."))


@pytest.mark.parametrize("route", ["playlist/{}.m3u8", "m3u8/video/{}.m3u8",
                                   "m3u8/subtitle/{}.m3u8", "segments/3/{}.ts", "subtitle/{}.vtt"])
def test_each_route_leads_to_the_normal_path_and_to_a_renamed_file(
        app: tuple[Runtime, TestClient], route: str) -> None:
    """302 to the path's normal form, or to the file that has the video id now: on the same
    route (its mode, segment and suffix), the query kept."""
    runtime, client = app
    folder = runtime.settings.download_path / "moved"
    folder.mkdir(exist_ok=True)
    (folder / "Now [abcdefghijk].srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nx\n")
    # the file with the id is found in the index (its watcher, or the disk before it is ready)
    wait_for(lambda: "Now [abcdefghijk].srt" in runtime.files.index.names("moved"),
             message="the file indexed")
    found = "/api/player/" + route.format(quote("moved/Now [abcdefghijk].srt"))
    for asked in ("moved//Now [abcdefghijk].srt", "moved/Before [abcdefghijk].srt"):
        result = client.simulate_get("/api/player/" + route.format(asked),
                                     query_string="duration=2")
        assert result.status_code == 302, result.text
        location = urlsplit(result.headers["location"])
        assert (location.path, location.query) == (found, "duration=2")


# --- F3: files that stall ffprobe, files swapped under the check -----------------------------

def has_reader(fifo: Path) -> bool:
    """Whether a process has the FIFO open for reading (opening its write end then succeeds;
    closing it at once hands that reader an end of file, so it never stays blocked)."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # ENXIO: no reader
        return False
    return True


def test_a_fifo_named_by_a_playlist_is_never_opened(app: tuple[Runtime, TestClient]) -> None:
    """The F3 file: an HLS playlist naming a FIFO beside it kept ffprobe (and its request
    thread) waiting for a writer until the probe timeout, on every request."""
    runtime, client = app
    root = runtime.settings.download_path
    os.mkfifo(root / "hang.ts")
    (root / "hang.mp4").write_text("#EXTM3U\n#EXT-X-TARGETDURATION:5\n#EXTINF:5.0,\n"
                                   "hang.ts\n#EXT-X-ENDLIST\n")
    answers: list[Result] = []
    asking = threading.Thread(target=lambda: answers.extend(
        client.simulate_get(f"/api/file/{route}/hang.mp4") for route in ("info", "ffprobe")))
    asking.start()
    opened = wait_for(lambda: "opened" if has_reader(root / "hang.ts")
                      else "answered" if answers[1:] else None, message="an answer")
    asking.join()
    assert opened == "answered"
    info, probed = answers
    assert info.status_code == 200 and info.json["ffprobe"] == {}
    refused(probed)


def swap(path: Path, make: Callable[[Path], None]) -> None:
    """Put what ``make`` makes in ``path``'s place, in one rename."""
    new = path.with_name(".swap")
    make(new)
    os.replace(new, path)


def swap_folder(path: Path, outside: Path) -> None:
    """The folder holding ``path`` becomes a symlink to ``outside`` (which has a file by the
    same name)."""
    shutil.copyfile(outside / "private.mp3", outside / path.name)
    shutil.rmtree(path.parent)
    path.parent.symlink_to(outside)


@pytest.mark.parametrize("change, status", [("symlink", 404), ("fifo", 404), ("folder", 403)])
@pytest.mark.parametrize("route", ["file/ffprobe/{}", "player/playlist/{}.m3u8",
                                   "player/segments/0/{}.ts", "player/subtitle/{}.vtt"])
def test_a_file_swapped_after_the_check_is_not_followed(
        app: tuple[Runtime, TestClient], outside: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, route: str, change: str, status: int) -> None:
    """Between the API's check of the path and ffmpeg's open, the file becomes a symlink to
    a file outside the folder, a FIFO, or its folder a symlink out: refused, never read."""
    runtime, client = app
    subtitle = route.endswith(".vtt")
    folder = runtime.settings.download_path / f"swap-{tmp_path.name}"
    folder.mkdir()
    victim = folder / ("victim.srt" if subtitle else "victim.mp3")
    shutil.copyfile(runtime.settings.download_path / "tone.mp3", victim)
    secret = outside / ("secret.srt" if subtitle else "private.mp3")
    changes: dict[str, Callable[[], None]] = {
        "symlink": lambda: swap(victim, lambda new: new.symlink_to(secret)),
        "fifo": lambda: swap(victim, os.mkfifo),
        "folder": lambda: swap_folder(victim, outside),
    }

    def checked_then_changed(*args: Any, **kwargs: Any) -> tuple[Path, str]:
        found = checked(*args, **kwargs)
        changes[change]()
        return found

    checked = player_api.local_file
    monkeypatch.setattr(player_api, "local_file", checked_then_changed)
    monkeypatch.setattr(files_api, "local_file", checked_then_changed)
    rel = victim.relative_to(runtime.settings.download_path).as_posix()
    result = client.simulate_get("/api/" + route.format(rel))
    assert result.status_code == status, result.text
    assert result.json["error"] and SECRET not in result.text
    if change == "fifo":
        assert not has_reader(victim)


@pytest.mark.parametrize("route", ["file/ffprobe/{}", "player/segments/0/{}.ts",
                                   "player/subtitle/{}.vtt"])
def test_ffmpeg_reads_the_file_the_api_opened(
        app: tuple[Runtime, TestClient], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        route: str) -> None:
    """Once the API has opened the file, what its path names no longer matters: swapped for
    a FIFO right after the open, the file opened is the one probed, cut and converted."""
    runtime, client = app
    root = runtime.settings.download_path
    subtitle = route.endswith(".vtt")
    victim = root / f"opened-{tmp_path.name}.{'srt' if subtitle else 'mp3'}"
    if subtitle:
        victim.write_text("1\n00:00:00,000 --> 00:00:01,000\nThe opened one\n")
    else:
        shutil.copyfile(root / "tone.mp3", victim)

    def opened_then_changed(path: Path, top: Path) -> Any:
        media = opened(path, top)
        swap(path, os.mkfifo)
        return media

    opened = reading.open_regular
    monkeypatch.setattr(player_api, "open_regular", opened_then_changed)
    monkeypatch.setattr(files_api, "open_regular", opened_then_changed)
    result = client.simulate_get("/api/" + route.format(victim.name))
    assert result.status_code == 200, result.text
    assert not has_reader(victim)
    if subtitle:
        assert "The opened one" in result.text
    elif route.startswith("file/"):
        assert float(result.json["format"]["duration"]) == pytest.approx(2, abs=0.2)
    else:
        assert len(result.content) > 1000


def test_probes_are_bounded(app: tuple[Runtime, TestClient],
                            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every ffprobe slot taken (as by probes that stall): a probe that needs ffprobe waits
    SLOT_WAIT, then 503 with Retry-After, as the player's ffmpeg does; a cached answer still
    comes; a slot given back, the probe runs."""
    runtime, client = app
    root = runtime.settings.download_path
    fresh = root / f"fresh-{tmp_path.name}.mp3"
    shutil.copyfile(root / "tone.mp3", fresh)
    assert client.simulate_get("/api/file/ffprobe/tone.mp3").status_code == 200
    held = runtime.player.prober.slots
    monkeypatch.setattr(held, "wait", 0.05)  # the wait is not under test
    for _ in range(probe.PROBE_SLOTS):
        held.take()
    try:
        for route in ("file/ffprobe", "file/info", "player/playlist"):
            busy = client.simulate_get(f"/api/{route}/{fresh.name}"
                                       + (".m3u8" if route.startswith("player") else ""))
            assert busy.status_code == 503, busy.text
            assert busy.headers["Retry-After"] == "2"
            assert "ffprobe processes" in busy.json["error"]
        assert client.simulate_get("/api/file/ffprobe/tone.mp3").status_code == 200
    finally:
        for _ in range(probe.PROBE_SLOTS):
            held.give_back()
    assert client.simulate_get(f"/api/file/ffprobe/{fresh.name}").status_code == 200


def test_a_file_ffprobe_cannot_read_is_not_probed_again(
        app: tuple[Runtime, TestClient], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """The verdict is cached with the file's size and mtime: asked again, the same 400
    without a second ffprobe (none could run: its path is gone)."""
    runtime, client = app
    junk = runtime.settings.download_path / f"junk-{tmp_path.name}.mp4"
    junk.write_bytes(b"\0" * 4096)
    first = client.simulate_get(f"/api/file/ffprobe/{junk.name}")
    assert first.status_code == 400, first.text
    monkeypatch.setattr(probe, "FFPROBE", str(tmp_path / "no-ffprobe"))
    again = client.simulate_get(f"/api/file/ffprobe/{junk.name}")
    assert again.status_code == 400 and again.json == first.json


def claiming(source: Path, target: Path, timescale: int) -> None:
    """``source`` (an mp4 of one AAC track) as a file whose header says it lasts 2^32 - 16
    units of ``timescale``: the movie's and the track's lengths rewritten, nothing else."""
    data = bytearray(source.read_bytes())
    for box in (b"mvhd", b"mdhd"):
        at = data.find(box)
        assert at > 0 and data[at + 4] == 0  # version 0: 32-bit times
        data[at + 16:at + 24] = struct.pack(">II", timescale, 0xFFFFFFF0)
    target.write_bytes(data)


@pytest.mark.parametrize("timescale", [1000, 1], ids=["50-days", "136-years"])
def test_a_file_claiming_to_last_for_ever_is_refused_plainly(
        app: tuple[Runtime, TestClient], tmp_path: Path, timescale: int) -> None:
    """A header may claim any length, and the plan and playlist grew with it: 50 days made a
    playlist of 716,000 segments (tens of MB), 136 years filled the memory of the worker that
    planned it (on every playlist and segment request). Past MAX_DURATION, a plain 400."""
    runtime, client = app
    name = f"forever-{tmp_path.name}.m4a"
    claiming(runtime.settings.download_path / "tone.m4a",
             runtime.settings.download_path / name, timescale)
    probed = client.simulate_get(f"/api/file/ffprobe/{name}")
    assert probed.status_code == 200, probed.text
    assert float(probed.json["format"]["duration"]) > playlists.MAX_DURATION
    for route in (f"playlist/{name}.m3u8", f"m3u8/video/{name}.m3u8",
                  f"segments/0/{name}.ts"):
        answer = client.simulate_get(f"/api/player/{route}")
        assert answer.status_code == 400, answer.text[:200]
        assert f"more than the {playlists.MAX_DURATION:.0f} s the player plays" \
            in answer.json["error"]


def test_the_longest_subtitle_playlist_is_the_longest_file_played(
        app: tuple[Runtime, TestClient]) -> None:
    _, client = app
    longest = client.simulate_get("/api/player/m3u8/subtitle/tone.m4a.m3u8",
                                  params={"duration": playlists.MAX_DURATION})
    assert longest.status_code == 200, longest.text
    assert f"#EXTINF:{playlists.MAX_DURATION:.6f}," in longest.text
    over = client.simulate_get("/api/player/m3u8/subtitle/tone.m4a.m3u8",
                               params={"duration": playlists.MAX_DURATION * 1.01})
    assert over.status_code == 400 and "duration" in over.json["error"], over.text


@pytest.mark.parametrize(("name", "content", "mimetype"), [
    ("vp9.webm", "vp9.webm", "video/webm"),
    ("mp4-named.mkv", "h264.mp4", "video/mp4"),  # the content says, not the name
    ("mpeg2-named.mp4", "mpeg2.ts", "video/mp2t"),
])
def test_the_info_mimetype_is_the_contents(app: tuple[Runtime, TestClient], name: str,
                                           content: str, mimetype: str) -> None:
    runtime, client = app
    root = runtime.settings.download_path
    if name != content:
        shutil.copyfile(root / content, root / name)
    info = client.simulate_get(f"/api/file/info/{name}")
    assert info.status_code == 200, info.text
    assert info.json["mimetype"] == mimetype


def test_a_subtitle_too_big_to_convert_is_refused_plainly(
        app: tuple[Runtime, TestClient], tmp_path: Path) -> None:
    """A subtitle sidecar of more than MAX_SUBTITLE (10 MiB) is never read or handed to
    ffmpeg: a plain 400, whatever it holds."""
    runtime, client = app
    for suffix in ("srt", "vtt"):
        big = runtime.settings.download_path / f"big-{tmp_path.name}.en.{suffix}"
        with big.open("wb") as out:
            out.truncate(subtitles.MAX_SUBTITLE + 1)
        answer = client.simulate_get(f"/api/player/subtitle/{big.name}.vtt")
        assert answer.status_code == 400, answer.text[:200]
        assert answer.json == {"error": "The subtitle file is too big to convert.",
                               "code": "INVALID_REQUEST"}
