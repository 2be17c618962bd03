"""Hostile files in the download folder against the player and the probe endpoints, in
process on real files and the real ffmpeg/ffprobe: playlists and concat lists dressed as
media (ffmpeg picks its demuxer from the content, and those demuxers open other files), and
the media formats the player plays, which must still play."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_settings, started
from falcon.testing import Result, TestClient

from appliance.api.app import create_app
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
    assert SECRET not in result.text


@pytest.mark.parametrize("name", ["aud_hls.mp4", "cat.mp4"])
def test_playlists_dressed_as_media_are_refused(app: tuple[Runtime, TestClient],
                                                name: str) -> None:
    _, client = app
    refused(client.simulate_get(f"/api/file/ffprobe/{name}"))
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
