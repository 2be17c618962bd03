"""The player's cuts and bounds, in process on real files and the real ffmpeg/ffprobe: copied
segments that meet at keyframes lying exactly on the SEGMENT marks (no gap, no overlap), a
file whose duration is a whole number of segments, the exact playlists, which H.264 is copied,
transcoded segments without B-frames, the ffmpeg bound following the setting, and what a
segment and a subtitle conversion leave behind (their pipe, their slot)."""

from __future__ import annotations

import itertools
import json
import os
import re
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import runtime_of_module
from falcon.testing import TestClient

from appliance import slots
from appliance.api.app import create_app
from appliance.player import playlists, segments, subtitles
from appliance.runtime import Runtime

pytestmark = pytest.mark.xdist_group("player")

FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
VIDEO = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=25"]
SOURCES = {
    # 18 s exactly (video only), a keyframe every second: on the 6 s marks themselves
    "marks.mp4": [*VIDEO, "-t", "18", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                  "-sc_threshold", "0", "-pix_fmt", "yuv420p"],
    # H.264 that browsers do not play (4:4:4): transcoded, never copied
    "h264-444.mp4": [*VIDEO, "-t", "3", "-c:v", "libx264", "-preset", "ultrafast",
                     "-pix_fmt", "yuv444p"],
    # copied with its AAC; copied with its MP3 transcoded
    "aac.mp4": [*VIDEO, "-f", "lavfi", "-i", "sine=frequency=440", "-t", "3", "-c:v", "libx264",
                "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"],
    "mp3.mp4": [*VIDEO, "-f", "lavfi", "-i", "sine=frequency=440", "-t", "3", "-c:v", "libx264",
                "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "libmp3lame"],
    # MPEG-TS, where a seek lands on any packet, not a keyframe; one every 10 s (longer
    # than a segment)
    "gop10.ts": [*VIDEO, "-f", "lavfi", "-i", "sine=frequency=440", "-t", "30",
                 "-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-sc_threshold", "0",
                 "-pix_fmt", "yuv420p", "-c:a", "aac"],
    # one every 20 s: longer than the first window a keyframe is searched in (12 s)
    "gop20.ts": [*VIDEO, "-f", "lavfi", "-i", "sine=frequency=440", "-t", "26",
                 "-c:v", "libx264", "-preset", "ultrafast", "-g", "500", "-sc_threshold", "0",
                 "-pix_fmt", "yuv420p", "-c:a", "aac"],
    # transcoded: MPEG-4 part 2
    "mpeg4.mkv": [*VIDEO, "-f", "lavfi", "-i", "sine=frequency=440", "-t", "8",
                  "-c:v", "mpeg4", "-c:a", "libmp3lame"],
    # AAC without copied video: sound alone (44.1 kHz: no packet on a mark; 48 kHz: one on
    # the 24 s mark), in MPEG-TS (its clock starts at 1.4 s), beside a transcoded video
    "song.m4a": ["-f", "lavfi", "-i", "sine=frequency=440:duration=20", "-c:a", "aac"],
    "song48.m4a": ["-f", "lavfi", "-i", "sine=frequency=440:duration=26:sample_rate=48000",
                   "-c:a", "aac"],
    "song.ts": ["-f", "lavfi", "-i", "sine=frequency=440:duration=14", "-c:a", "aac"],
    # shorter than a second
    "blip.m4a": ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.4", "-c:a", "aac"],
    "mpeg4-aac.mkv": [*VIDEO, "-f", "lavfi", "-i", "sine=frequency=440", "-t", "14",
                      "-c:v", "mpeg4", "-c:a", "aac"],
    # audio with its cover picture, as yt-dlp's --embed-thumbnail makes it: 8 s, two segments
    **{name: ["-f", "lavfi", "-i", "sine=frequency=440:duration=8", "-f", "lavfi", "-i",
              "testsrc=size=320x240:rate=1:duration=1", "-map", "0", "-map", "1",
              "-c:v", "mjpeg", "-disposition:v", "attached_pic", "-c:a", codec]
       for name, codec in (("cover.mp3", "libmp3lame"), ("cover.m4a", "aac"))},
}
FRAME = 0.04  # 25 frames a second


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    for runtime in runtime_of_module(tmp_path_factory, "player-cuts"):
        root = runtime.settings.download_path
        for name, args in SOURCES.items():
            subprocess.run([*FFMPEG, *args, str(root / name)], check=True, timeout=120)
        # a recording that begins between keyframes (its first at 7 s, then every 10 s), as a
        # capture joined mid-broadcast or a file cut without re-encoding is
        subprocess.run(["ffmpeg", "-nostdin", "-v", "quiet", "-y", "-i", str(root / "gop10.ts"),
                        "-ss", "3", "-c", "copy", "-copyinkf", str(root / "midgop.ts")],
                       check=True, timeout=120)
        (root / "mpeg4.en.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nHi\n")
        yield runtime, TestClient(create_app(runtime))


def probe_bytes(data: bytes, *args: str) -> str:
    return subprocess.run(["ffprobe", "-v", "error", *args, "-"], input=data,
                          capture_output=True, timeout=60, check=True).stdout.decode()


def video_times(segment: bytes) -> list[float]:
    out = probe_bytes(segment, "-select_streams", "v:0", "-show_entries", "packet=pts_time",
                      "-of", "csv=p=0")
    return sorted(float(line.strip(",")) for line in out.split() if line.strip(","))


def version(playlist: str) -> str:
    """The file's version the video playlist's segment URLs name (one for them all)."""
    [found] = set(re.findall(r"&v=([0-9a-f]+)$", playlist, re.MULTILINE))
    return found


def test_copied_segments_meet_at_keyframes_on_the_marks(
        app: tuple[Runtime, TestClient]) -> None:
    """A keyframe exactly on a 6 s mark belongs to the next segment: a segment stops one
    frame before it, the next starts on it. 18 s make three segments, not a fourth of
    nothing. The playlists, exactly."""
    runtime, client = app
    bit_rate = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-of", "json",
         str(runtime.settings.download_path / "marks.mp4")],
        capture_output=True, check=True, timeout=60).stdout)["format"]["bit_rate"]
    master = client.simulate_get("/api/player/playlist/marks.mp4.m3u8")
    assert master.status_code == 200, master.text
    assert master.text == ("#EXTM3U\n#EXT-X-VERSION:3\n"
                           f"#EXT-X-STREAM-INF:PROGRAM-ID=1,BANDWIDTH={int(bit_rate)}\n"
                           "/api/player/m3u8/video/marks.mp4.m3u8\n")
    video = client.simulate_get("/api/player/m3u8/video/marks.mp4.m3u8")
    v = version(video.text)
    assert video.text == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXTINF:6.000000,\n/api/player/segments/0/marks.mp4.ts?sd=6.000000&vc=0&ac=0&v={v}\n"
        f"#EXTINF:6.000000,\n/api/player/segments/1/marks.mp4.ts?sd=6.000000&vc=0&ac=0&v={v}\n"
        f"#EXTINF:6.000000,\n/api/player/segments/2/marks.mp4.ts?sd=6.000000&vc=0&ac=0&v={v}\n"
        "#EXT-X-ENDLIST\n")
    cuts = []
    for index in (0, 1, 2):
        segment = client.simulate_get(f"/api/player/segments/{index}/marks.mp4.ts")
        assert segment.status_code == 200, segment.text
        assert set(probe_bytes(segment.content, "-show_entries", "stream=codec_name",
                           "-of", "csv=p=0").split()) == {"h264"}  # copied
        cuts.append(video_times(segment.content))
    for index, times in enumerate(cuts):
        assert times[0] == pytest.approx(6.0 * index, abs=0.001)
        assert times[-1] == pytest.approx(6.0 * (index + 1) - FRAME, abs=0.001)
    assert sum(len(times) for times in cuts) == 18 * 25  # every frame once
    assert client.simulate_get("/api/player/segments/3/marks.mp4.ts").status_code == 404


def test_transcoded_playlists_exactly(app: tuple[Runtime, TestClient]) -> None:
    """The last segment is what is left of the file; the subtitle sidecar is a track."""
    runtime, client = app
    probed = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-of", "json",
         str(runtime.settings.download_path / "mpeg4.mkv")],
        capture_output=True, check=True, timeout=60).stdout)["format"]
    total = float(probed["duration"])
    master = client.simulate_get("/api/player/playlist/mpeg4.mkv.m3u8")
    assert master.text == (
        "#EXTM3U\n#EXT-X-VERSION:3\n"
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="SRT (0) - en",DEFAULT=NO,'
        'AUTOSELECT=NO,FORCED=NO,LANGUAGE="en",'
        f'URI="/api/player/m3u8/subtitle/mpeg4.en.srt.m3u8?duration={total:.6f}"\n'
        f"#EXT-X-STREAM-INF:PROGRAM-ID=1,BANDWIDTH={int(probed['bit_rate'])},"
        'SUBTITLES="subs"\n/api/player/m3u8/video/mpeg4.mkv.m3u8\n')
    video = client.simulate_get("/api/player/m3u8/video/mpeg4.mkv.m3u8").text
    last, v = total - 6, version(video)
    assert video.splitlines()[5:] == [
        "#EXTINF:6.000000,", f"/api/player/segments/0/mpeg4.mkv.ts?sd=6.000000&vc=1&ac=1&v={v}",
        f"#EXTINF:{last:.6f},",
        f"/api/player/segments/1/mpeg4.mkv.ts?sd={last:.6f}&vc=1&ac=1&v={v}",
        "#EXT-X-ENDLIST"]


def test_a_file_shorter_than_a_second_has_a_target_duration_of_one(
        app: tuple[Runtime, TestClient]) -> None:
    """HLS's target duration is the whole seconds of the longest segment, rounded up: 1 for
    a sound of 0.4 s (never 0, which no player takes)."""
    runtime, client = app
    total = float(json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-of", "json",
         str(runtime.settings.download_path / "blip.m4a")],
        capture_output=True, check=True, timeout=60).stdout)["format"]["duration"])
    assert total < 1
    video = client.simulate_get("/api/player/m3u8/video/blip.m4a.m3u8")
    assert video.status_code == 200, video.text
    assert video.text.splitlines()[:6] == [
        "#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD", f"#EXTINF:{total:.6f},"]


@pytest.mark.parametrize(("name", "flags"), [("aac.mp4", "vc=0&ac=0"),
                                             ("mp3.mp4", "vc=0&ac=1")])
def test_aac_is_copied_along_with_the_video(app: tuple[Runtime, TestClient], name: str,
                                            flags: str) -> None:
    _, client = app
    video = client.simulate_get(f"/api/player/m3u8/video/{name}.m3u8").text
    assert flags in video, video
    segment = client.simulate_get(f"/api/player/segments/0/{name}.ts")
    assert segment.status_code == 200, segment.text
    assert set(probe_bytes(segment.content, "-show_entries", "stream=codec_name",
                           "-of", "csv=p=0").split()) == {"h264", "aac"}


AUDIO_TIMES = ("-select_streams", "a:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0")


def audio_times(data: bytes | Path) -> list[float]:
    if isinstance(data, Path):  # (an mp4's index may follow its packets: not from a pipe)
        out = subprocess.run(["ffprobe", "-v", "error", *AUDIO_TIMES, str(data)],
                             capture_output=True, timeout=60, check=True).stdout.decode()
    else:
        out = probe_bytes(data, *AUDIO_TIMES)
    return [float(line.strip(",")) for line in out.split() if line.strip(",")]


@pytest.mark.parametrize(("name", "flags", "segments"), [
    ("song.m4a", "vc=0&ac=0", 4), ("song48.m4a", "vc=0&ac=0", 5), ("song.ts", "vc=0&ac=0", 3),
    ("mpeg4-aac.mkv", "vc=1&ac=0", 3)])
def test_aac_is_copied_and_its_segments_join_packet_for_packet(
        app: tuple[Runtime, TestClient], name: str, flags: str, segments: int) -> None:
    """AAC is copied whether the video is copied, transcoded or absent (it was encoded again
    for each segment). A copied packet is whole: each of the file's packets is in exactly
    one segment, in order (no gap, no packet twice where a seek brought the one across the
    mark along), and a segment holds the packets from its mark on."""
    runtime, client = app
    video = client.simulate_get(f"/api/player/m3u8/video/{name}.m3u8")
    assert video.status_code == 200, video.text
    assert video.text.count(flags) == segments, video.text
    source = runtime.settings.download_path / name
    # (the encoder's priming packet, before 0, is dropped by every player)
    expected = [t for t in audio_times(source) if t >= 0]
    origin = expected[0]
    served: list[float] = []
    frames: list[float] = []
    for index in range(segments):
        segment = client.simulate_get(f"/api/player/segments/{index}/{name}.ts",
                                      query_string=flags)
        assert segment.status_code == 200, segment.text
        codecs = set(probe_bytes(segment.content, "-show_entries",
                                 "stream=codec_type,codec_name", "-of", "csv=p=0").split())
        assert codecs == {"aac,audio", *(["h264,video"] if "vc=1" in flags else [])}
        times = audio_times(segment.content)
        assert times == sorted(times)
        mark = origin + 6.0 * index
        assert mark - 0.0001 <= times[0] < mark + 0.024, (index, times[0])
        served += times
        if "vc=1" in flags:  # the transcoded video is cut on the marks as before
            cut = video_times(segment.content)
            # (a Matroska file's frames come out one frame late, as they did before)
            assert mark - 0.001 <= cut[0] <= mark + FRAME + 0.001, (index, cut[0])
            frames += cut
    # (Matroska's first AAC packet is the encoder's priming: a seek to 0 drops it, as it did
    # with the video copied)
    if name.endswith(".mkv"):
        assert len(expected) - len(served) == 1
        expected = expected[1:]
    assert len(served) == len(expected) > 0
    assert len(frames) == (14 * 25 if "vc=1" in flags else 0)
    assert all(b - a == pytest.approx(FRAME, abs=0.001) for a, b in itertools.pairwise(frames))
    assert max(abs(a - b) for a, b in zip(served, expected, strict=True)) < 0.0001


def test_a_recording_that_begins_between_keyframes_plays_through(
        app: tuple[Runtime, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    """No keyframe before a mark, down to the file's start: the cut is the file's start (the
    segment before it holds nothing, the frames are in the next), as for any keyframe
    interval longer than a segment; its sound plays from the start. Before, each such
    segment was a 400 ("No keyframe found"): the first 12 s of the file never played."""
    runtime, client = app
    source = runtime.settings.download_path / "midgop.ts"
    keyframes = probe_bytes(source.read_bytes(), "-select_streams", "v:0", "-show_entries",
                            "packet=pts_time,flags", "-of", "csv=p=0")
    first = min(float(line.split(",")[0]) for line in keyframes.split() if ",K" in line)
    # (the frames before the first keyframe refer to one the file lacks: no player shows
    # them, and ffmpeg copies none)
    expected = [t for t in video_times(source.read_bytes()) if t >= first]
    sound: list[float] = []
    video = client.simulate_get("/api/player/m3u8/video/midgop.ts.m3u8")
    assert video.status_code == 200, video.text
    count = video.text.count("#EXTINF")
    assert count == 5, video.text
    frames: list[float] = []
    for index in range(count):
        segment = client.simulate_get(f"/api/player/segments/{index}/midgop.ts.ts")
        assert segment.status_code == 200, (index, segment.text)
        frames += video_times(segment.content) if segment.content else []
        sound += audio_times(segment.content) if segment.content else []
    assert frames == expected  # every frame once, in order
    # the segment that holds nothing runs no ffmpeg (here one that would fail)
    monkeypatch.setattr(segments, "_BASE", ["false", *segments._BASE[1:]])
    empty = client.simulate_get("/api/player/segments/0/midgop.ts.ts")
    assert empty.status_code == 200 and empty.content == b"", empty.text
    # the sound from the file's start on, as the recording has it
    assert sound[0] == pytest.approx(1.4, abs=0.03) and sound == sorted(set(sound))


def test_a_segments_validator_says_whether_its_audio_is_copied(
        app: tuple[Runtime, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    """The same file and segment with its AAC encoded (as before this version copied it) is
    other bytes: another ETag, so a browser's kept segment is not confirmed with a 304."""
    _, client = app
    copied = client.simulate_get("/api/player/segments/1/song.m4a.ts")
    assert copied.status_code == 200, copied.text
    monkeypatch.setattr(playlists, "AAC", "no codec")  # the plan encodes every audio
    encoded = client.simulate_get("/api/player/segments/1/song.m4a.ts",
                                  headers={"If-None-Match": copied.headers["etag"]})
    assert encoded.status_code == 200 and encoded.content != copied.content
    assert encoded.headers["etag"] != copied.headers["etag"]


@pytest.mark.parametrize(("name", "flags"), [("cover.mp3", "vc=0&ac=1"),
                                             ("cover.m4a", "vc=0&ac=0")])
def test_an_audio_files_cover_is_not_its_video(app: tuple[Runtime, TestClient],
                                               name: str, flags: str) -> None:
    """The cover is one picture at the start: before, each segment ran libx264 on it and
    held an H.264 stream with one frame (the first) or none, and the playlist said the
    video was transcoded. Now the segments are the sound alone."""
    _, client = app
    video = client.simulate_get(f"/api/player/m3u8/video/{name}.m3u8")
    assert video.status_code == 200, video.text
    assert video.text.count(flags) == 2, video.text
    for index in (0, 1):
        segment = client.simulate_get(f"/api/player/segments/{index}/{name}.ts")
        assert segment.status_code == 200, segment.text
        assert set(probe_bytes(segment.content, "-show_entries", "stream=codec_type,codec_name",
                               "-of", "csv=p=0").split()) == {"aac,audio"}


def test_a_file_without_a_duration_is_refused_plainly(app: tuple[Runtime, TestClient]
                                                     ) -> None:
    """A WAV header and no sound: ffprobe reads it and says no duration. An m4a whose header
    says it lasts 0 s: ffprobe says 0.000000."""
    runtime, client = app
    root = runtime.settings.download_path
    header = (b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) + b"data" + bytes(4))
    (root / "silent.wav").write_bytes(header)
    data = bytearray((root / "song.m4a").read_bytes())
    for box in (b"mvhd", b"mdhd"):  # version 0: the 32-bit length after the time scale
        at = data.find(box)
        data[at + 20:at + 24] = bytes(4)
    (root / "zero.m4a").write_bytes(data)
    probed = client.simulate_get("/api/file/ffprobe/zero.m4a")
    assert probed.json["format"]["duration"] == "0.000000", probed.text
    for route in ("playlist/silent.wav.m3u8", "m3u8/video/silent.wav.m3u8",
                  "segments/0/silent.wav.ts", "playlist/zero.m4a.m3u8",
                  "m3u8/video/zero.m4a.m3u8", "segments/0/zero.m4a.ts"):
        refused = client.simulate_get(f"/api/player/{route}")
        assert refused.status_code == 400, refused.text
        assert refused.json["error"] == ("The file has no duration ffprobe can read; it cannot "
                                         "be played."), route


def test_subtitle_playlist_exactly(app: tuple[Runtime, TestClient]) -> None:
    runtime, client = app
    (runtime.settings.download_path / "a b.en.srt").write_text("")
    playlist = client.simulate_get("/api/player/m3u8/subtitle/a b.en.srt.m3u8",
                                   query_string="duration=12.5")
    assert playlist.status_code == 200, playlist.text
    assert playlist.text == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:13\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:12.500000,\n/api/player/subtitle/a%20b.en.srt.vtt\n"
        "#EXT-X-ENDLIST\n")
    for bad in ("", "duration=0", "duration=-1", "duration=nan", "duration=inf",
                "duration=1e12", "duration=ten"):
        refused = client.simulate_get("/api/player/m3u8/subtitle/a b.en.srt.m3u8",
                                      query_string=bad)
        assert refused.status_code == 400, bad
        assert "duration" in refused.json["error"], bad


def test_a_subtitle_has_its_validators(app: tuple[Runtime, TestClient]) -> None:
    runtime, client = app
    (runtime.settings.download_path / "valid.en.srt").write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nHi\n")
    first = client.simulate_get("/api/player/subtitle/valid.en.srt.vtt")
    assert first.status_code == 200 and first.text.startswith("WEBVTT")
    for condition in ({"If-None-Match": first.headers["etag"]},
                      {"If-Modified-Since": first.headers["last-modified"]}):
        again = client.simulate_get("/api/player/subtitle/valid.en.srt.vtt", headers=condition)
        assert again.status_code == 304 and not again.content, condition


def test_h264_a_browser_does_not_play_is_transcoded(app: tuple[Runtime, TestClient]) -> None:
    _, client = app
    video = client.simulate_get("/api/player/m3u8/video/h264-444.mp4.m3u8")
    assert video.status_code == 200, video.text
    assert "vc=1&ac=0" in video.text and "vc=0" not in video.text
    segment = client.simulate_get("/api/player/segments/0/h264-444.mp4.ts",
                                  query_string="vc=1")
    assert segment.status_code == 200, segment.text
    assert set(probe_bytes(segment.content, "-show_entries", "stream=pix_fmt",
                       "-of", "csv=p=0").split()) == {"yuv420p"}


def test_a_segment_ffmpeg_cannot_make_is_a_plain_error(app: tuple[Runtime, TestClient]
                                                       ) -> None:
    """An encoder this machine lacks (YTP_PLAYER_ENCODER set for another box): before, every
    transcoded segment was a 200 of nothing (a player waiting on a black screen), the reason
    in the log only. Now a 400 that says it, nothing a cache keeps, the slot given back;
    copied segments still play."""
    runtime, client = app
    old = runtime.settings.player_encoder
    runtime.settings_holder.change(lambda s: s.replace(player_encoder="no_such_encoder"))
    try:
        failed = client.simulate_get("/api/player/segments/0/mpeg4.mkv.ts")
        copied = client.simulate_get("/api/player/segments/0/marks.mp4.ts")
    finally:
        runtime.settings_holder.change(lambda s: s.replace(player_encoder=old))
    assert failed.status_code == 400, failed.content[:200]
    assert failed.json["error"] == ("ffmpeg cannot make this segment of 'mpeg4.mkv': "
                                    "Unknown encoder 'no_such_encoder'")
    assert failed.headers["cache-control"] == "no-store"
    assert "etag" not in failed.headers and "last-modified" not in failed.headers
    assert copied.status_code == 200 and copied.content
    assert runtime.player.slots.taken == 0


def test_a_segment_ffmpeg_fails_on_midway_is_broken_off_with_its_reason(
        app: tuple[Runtime, TestClient], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Once ffmpeg has sent bytes the answer has started: a failure after breaks it off
    (``SegmentBroken``, which the worker logs as it closes the connection), with ffmpeg's
    reason (the file named as the API names it). Before, the answer ended as if whole."""
    runtime, client = app
    failing = tmp_path / "ffmpeg"
    failing.write_text("#!/bin/sh\nprintf G\necho \"$*: broken \\377\" >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setattr(segments, "_BASE", [str(failing), *segments._BASE[1:]])
    with pytest.raises(segments.SegmentBroken) as broken:
        client.simulate_get("/api/player/segments/0/mpeg4.mkv.ts")
    said = str(broken.value)
    assert said.startswith("ffmpeg failed on a segment of mpeg4.mkv (1): ")
    assert said.endswith(": broken \ufffd") and "-i mpeg4.mkv " in said and "/proc/" not in said
    assert runtime.player.slots.taken == 0


def test_an_ffmpeg_that_hangs_is_stopped_and_said(
        app: tuple[Runtime, TestClient], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An ffmpeg that writes nothing and never ends (a file on a disk that stalls): stopped at
    SEGMENT_TIMEOUT, told plainly, its slot given back."""
    runtime, client = app
    hanging = tmp_path / "ffmpeg"
    hanging.write_text("#!/bin/sh\nexec sleep 600\n")
    hanging.chmod(0o755)
    monkeypatch.setattr(segments, "_BASE", [str(hanging), *segments._BASE[1:]])
    monkeypatch.setattr(segments, "SEGMENT_TIMEOUT", 0.5)
    late = client.simulate_get("/api/player/segments/0/mpeg4.mkv.ts")
    assert late.status_code == 400, late.content[:200]
    assert late.json["error"] == ("ffmpeg cannot make this segment of 'mpeg4.mkv': it took "
                                  "longer than 0.5 s.")
    assert runtime.player.slots.taken == 0


def test_transcoded_segments_have_no_b_frames(app: tuple[Runtime, TestClient]) -> None:
    """Without B-frames a transcoded segment's decoding times start at its own start, never
    reaching back into the previous segment."""
    _, client = app
    segment = client.simulate_get("/api/player/segments/1/mpeg4.mkv.ts",
                                  query_string="vc=1&ac=1")
    assert segment.status_code == 200, segment.text
    streams = json.loads(probe_bytes(segment.content, "-select_streams", "v:0",
                                     "-show_streams", "-of", "json"))["streams"]
    assert [(s["codec_name"], s["has_b_frames"]) for s in streams] == [("h264", 0)]
    out = probe_bytes(segment.content, "-select_streams", "v:0", "-show_entries",
                      "packet=dts_time", "-of", "csv=p=0")
    times = [float(line.strip(",")) for line in out.split() if line.strip(",")]
    assert times and min(times) >= 6.0 - 0.001


def pipes() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("pipe:"):
            found.add(target)
    return found


def test_segments_and_subtitles_leave_nothing_behind(app: tuple[Runtime, TestClient]) -> None:
    """Every segment answered gives its ffmpeg slot back and closes its pipe: many segments
    later, every slot is free and no pipe more is open."""
    runtime, client = app
    (runtime.settings.download_path / "marks.en.srt").write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nHi\n")
    client.simulate_get("/api/player/segments/0/marks.mp4.ts")  # whatever a first one opens
    before = pipes()
    for _ in range(3):
        for index in (0, 1):
            assert client.simulate_get(
                f"/api/player/segments/{index}/marks.mp4.ts").status_code == 200
        assert client.simulate_get("/api/player/subtitle/marks.en.srt.vtt").status_code == 200
    assert pipes() <= before
    assert runtime.player.slots.taken == 0  # every one given back


def test_the_ffmpeg_bound_follows_the_setting(app: tuple[Runtime, TestClient],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """YTP_PLAYER_MAX_FFMPEG changed while the service runs: the new bound holds at once."""
    runtime, client = app
    monkeypatch.setattr(slots, "SLOT_WAIT", 0.05)  # the wait is not under test
    old = runtime.settings.player_max_ffmpeg
    try:
        for bound in (1, 3):
            runtime.settings_holder.change(lambda s, n=bound: s.replace(player_max_ffmpeg=n))
            held = runtime.player.slots
            for _ in range(bound - 1):
                held.take()
            try:
                url = "/api/player/segments/0/marks.mp4.ts"
                assert client.simulate_get(url).status_code == 200  # the last slot
                held.take()
                try:
                    busy = client.simulate_get(url)
                    assert busy.status_code == 503, busy.text
                    assert f"busy ({bound} ffmpeg processes" in busy.json["error"]
                finally:
                    held.give_back()
            finally:
                for _ in range(bound - 1):
                    held.give_back()
    finally:
        runtime.settings_holder.change(lambda s: s.replace(player_max_ffmpeg=old))


def test_a_stuck_subtitle_conversion_is_given_up(app: tuple[Runtime, TestClient],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A conversion that outlasts SUBTITLE_TIMEOUT is given up (400) and its slot given back
    (here: a timeout no ffmpeg can start within); the file is refused so from memory while
    it is unchanged, and converted again once it changed."""
    runtime, client = app
    path = runtime.settings.download_path / "slow.en.srt"
    path.write_text("1\n00:00:01,000 --> 00:00:02,000\nHi\n")
    monkeypatch.setattr(subtitles, "SUBTITLE_TIMEOUT", 0.000001)
    slow = client.simulate_get("/api/player/subtitle/slow.en.srt.vtt")
    assert slow.status_code == 400, slow.text
    assert slow.json["error"] == "Converting the subtitles took too long."
    assert runtime.player.slots.taken == 0
    monkeypatch.undo()
    assert client.simulate_get("/api/player/subtitle/slow.en.srt.vtt").json == slow.json
    path.write_text("1\n00:00:01,000 --> 00:00:02,000\nHi!\n")
    assert client.simulate_get("/api/player/subtitle/slow.en.srt.vtt").status_code == 200


def test_a_segment_gives_its_slot_back_where_it_took_it(
        app: tuple[Runtime, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    """YTP_PLAYER_MAX_FFMPEG changed just as a segment took its slot (the setting replaces the
    Slots): the segment gives its place back to the Slots it took it from, not to the new one
    (which it would push below zero: a RuntimeError, or one ffmpeg too many allowed)."""
    runtime, client = app
    old = runtime.settings.player_max_ffmpeg
    held = runtime.player.slots
    take = held.take

    def taken_as_the_setting_changes(holder: str | None = None) -> None:
        take(holder)
        runtime.settings_holder.change(lambda s: s.replace(player_max_ffmpeg=old + 1))

    monkeypatch.setattr(held, "take", taken_as_the_setting_changes)
    try:
        answer = client.simulate_get("/api/player/segments/0/marks.mp4.ts")
        assert answer.status_code == 200 and answer.content, answer.text
        assert runtime.player.slots is not held
        assert held.taken == 0 and runtime.player.slots.taken == 0
    finally:
        runtime.settings_holder.change(lambda s: s.replace(player_max_ffmpeg=old))


@pytest.mark.parametrize(("name", "seconds"), [("gop10.ts", 30), ("gop20.ts", 26)])
def test_copied_mpegts_with_long_keyframe_intervals_plays_through(
        app: tuple[Runtime, TestClient], name: str, seconds: int) -> None:
    """H.264 in MPEG-TS (a live stream's recording) with a keyframe every 10 s: a seek there
    lands on the packet nearest the time, not a keyframe, and the keyframe search read a few
    packets after it, found none, and answered 400 from the second segment on (the video
    stopped after 6 s). Every segment answers; together they hold every frame once, each
    non-empty one starting on a keyframe. A keyframe every 20 s: the window searched widens
    until it holds one."""
    _, client = app
    video = client.simulate_get(f"/api/player/m3u8/video/{name}.m3u8")
    assert video.status_code == 200, video.text
    count = video.text.count("#EXTINF:")
    assert count >= 5
    frames = []
    for index in range(count):
        segment = client.simulate_get(f"/api/player/segments/{index}/{name}.ts")
        assert segment.status_code == 200, segment.text
        flags = probe_bytes(segment.content, "-select_streams", "v:0", "-show_entries",
                            "packet=flags", "-of", "csv=p=0").split() if segment.content else []
        if not flags:
            continue  # no keyframe in its span: the next segment has its frames
        assert "K" in flags[0], (index, flags[:3])
        assert set(probe_bytes(segment.content, "-select_streams", "v", "-show_entries",
                               "stream=codec_name", "-of", "csv=p=0").split()) == {"h264"}
        frames += video_times(segment.content)
    assert len(frames) == seconds * 25 and len(set(frames)) == len(frames)
