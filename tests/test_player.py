"""The HLS player on the real service: playlists played through by a real player (ffmpeg),
copied and transcoded segments, subtitles, ffmpeg killed when the client leaves, the bound on
ffmpeg processes, hostile paths."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import Server, wait_for

from appliance.player.playlists import SEGMENT
from appliance.runtime import Runtime

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("player")]

FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
SOURCES = {
    # H.264 with a keyframe every 1.4 s (off the 6 s marks): played by copying, cut at the
    # keyframes before the marks
    "show/h264.mp4": ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi",
                      "-i", "sine=frequency=440", "-t", "14", "-c:v", "libx264", "-preset",
                      "ultrafast", "-g", "35", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
                      "-c:a", "aac"],
    # MPEG-4 part 2 and MP3 in Matroska: no browser plays it, so it is transcoded
    "show/mpeg4.mkv": ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi",
                       "-i", "sine=frequency=660", "-t", "8", "-c:v", "mpeg4", "-c:a",
                       "libmp3lame"],
    # Lossless noise: a segment far bigger than every buffer between ffmpeg and the client
    "huge.mp4": ["-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-t", "4", "-vf",
                 "noise=alls=100:allf=t", "-c:v", "libx264", "-preset", "ultrafast",
                 "-qp", "0", "-pix_fmt", "yuv420p"],
}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("player-media")
    for name, args in SOURCES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([*FFMPEG, *args, str(folder / name)], check=True, timeout=120)
    (folder / "show" / "h264.en.srt").write_text(
        "1\n00:00:01,000 --> 00:00:03,000\nHello <b>there</b>\n\n"
        "2\n00:00:05,000 --> 00:00:06,500\nSecond line\n")
    return folder


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("player"), {"YTP_PLAYER_MAX_FFMPEG": "1"})
    shutil.copytree(media, server.download_path)
    server.start()
    yield server
    server.stop()


def play(url: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """ffmpeg as the player: decode everything the playlist leads to; the decoded duration."""
    done = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-f", "null", "-",
                           "-progress", "pipe:1"], capture_output=True, text=True, timeout=180)
    times = re.findall(r"out_time_us=(\d+)", done.stdout)
    return done, int(times[-1]) / 1e6 if times else 0.0


def ffmpeg_pids(server: Server) -> list[int]:
    found = []
    for pid in server.pids():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "ffmpeg":
                found.append(pid)
        except OSError:
            continue
    return found


def test_copied_video_plays_start_to_end(served: Server) -> None:
    master = served.get("/api/player/playlist/show/h264.mp4.m3u8")
    assert master.status_code == 200, master.text
    assert master.headers["content-type"].startswith("application/x-mpegURL")
    lines = master.text.splitlines()
    assert lines[0] == "#EXTM3U" and lines[-1] == "/api/player/m3u8/video/show/h264.mp4.m3u8"
    assert ('URI="/api/player/m3u8/subtitle/show/h264.en.srt.m3u8?duration=14.000000"'
            in master.text) and 'LANGUAGE="en"' in master.text
    video = served.get("/api/player/m3u8/video/show/h264.mp4.m3u8").text
    durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", video)]
    assert durations == [6.0, 6.0, 2.0]  # nominal: the cuts are the keyframes before them
    assert "vc=0" in video and "#EXT-X-ENDLIST" in video
    done, decoded = play(f"{served.url}/api/player/playlist/show/h264.mp4.m3u8")
    assert done.returncode == 0 and done.stderr == ""  # no error, no overlap on the way
    assert abs(decoded - 14.0) <= SEGMENT
    # segment 1 runs from the keyframe at 5.6 s to just before the one at 11.2 s
    one = served.get("/api/player/segments/1/show/h264.mp4.ts").content
    packets = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0",
                             "-show_entries", "packet=pts_time", "-of", "csv=p=0", "-"],
                            input=one, capture_output=True, timeout=60).stdout.split()
    times = [float(line.split(b",")[0]) for line in packets if line.split(b",")[0]]
    assert min(times) == pytest.approx(5.6, abs=0.01)
    assert max(times) == pytest.approx(11.16, abs=0.01)


def test_downloaded_file_plays(served: Server, origin: MediaOrigin) -> None:
    [queued] = served.post("/api/history", {"url": origin.clip_url}).json()
    item = served.wait_status(queued["id"], {"finished"})
    done, decoded = play(f"{served.url}/api/player/playlist/{item['filename']}.m3u8")
    assert done.returncode == 0 and done.stderr == ""
    assert abs(decoded - 3.0) <= SEGMENT


def test_transcoded_video_plays(served: Server) -> None:
    video = served.get("/api/player/m3u8/video/show/mpeg4.mkv.m3u8").text
    assert "vc=1&ac=1" in video
    assert re.findall(r"#EXTINF:([\d.]+),", video) == ["6.000000", "2.025000"]
    segment = served.get("/api/player/segments/0/show/mpeg4.mkv.ts?sd=6&vc=1&ac=1")
    assert segment.status_code == 200 and segment.headers["content-type"] == "video/MP2T"
    probed = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
                             "-of", "csv=p=0", "-"], input=segment.content,
                            capture_output=True, timeout=60)
    assert set(probed.stdout.decode().split()) == {"h264", "aac"}
    # Each segment's AAC starts with the encoder's priming frame, which ffmpeg's null muxer
    # reports as a timestamp overlap; the play itself goes through.
    done, decoded = play(f"{served.url}/api/player/playlist/show/mpeg4.mkv.m3u8")
    assert done.returncode == 0
    assert abs(decoded - 8.0) <= SEGMENT


def test_a_latin1_name_plays_through_the_server(served: Server) -> None:
    """A file whose name is Latin-1 bytes, played by ffmpeg through gunicorn by its URL
    (``caf%E9.mkv``): the playlists' URLs name it by its bytes, and its subtitles are found.
    Before, every route answered 404."""
    folder = os.fsencode(served.download_path / "show")
    shutil.copyfile(folder + b"/mpeg4.mkv", folder + b"/caf\xe9.mkv")
    shutil.copyfile(folder + b"/h264.en.srt", folder + b"/caf\xe9.en.srt")
    track = "/api/player/m3u8/subtitle/show/caf%E9.en.srt.m3u8?duration="

    def master() -> str:
        answer = served.get("/api/player/playlist/show/caf%E9.mkv.m3u8")
        assert answer.status_code == 200, answer.text
        return answer.text if track in answer.text else ""

    # the subtitle's track comes from the file index, which sees the copy a moment later
    wait_for(master, timeout=30, message="the subtitle's track in the master playlist")
    done, decoded = play(f"{served.url}/api/player/playlist/show/caf%E9.mkv.m3u8")
    assert done.returncode == 0, done.stderr
    assert abs(decoded - 8.0) <= SEGMENT
    vtt = served.get("/api/player/subtitle/show/caf%E9.en.srt.vtt")
    assert vtt.status_code == 200 and "Second line" in vtt.text


def test_subtitles_as_webvtt(served: Server) -> None:
    playlist = served.get("/api/player/m3u8/subtitle/show/h264.en.srt.m3u8?duration=14")
    assert playlist.status_code == 200
    assert "/api/player/subtitle/show/h264.en.srt.vtt" in playlist.text
    assert "#EXT-X-TARGETDURATION:14" in playlist.text
    vtt = served.get("/api/player/subtitle/show/h264.en.srt.vtt")
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text.startswith("WEBVTT")
    assert "00:01.000 --> 00:03.000" in vtt.text and "Second line" in vtt.text
    assert served.get("/api/player/m3u8/subtitle/show/h264.en.srt.m3u8").json() == {
        "error": "duration is required.", "code": "INVALID_REQUEST"}
    # (it said "duration is required." too)
    nan = served.get("/api/player/m3u8/subtitle/show/h264.en.srt.m3u8?duration=nan")
    assert nan.status_code == 400 and nan.json()["error"] == (
        "duration must be a number of seconds (it is nan).")
    assert served.get("/api/player/subtitle/show/h264.mp4.vtt").status_code == 400


def test_ffmpeg_killed_when_client_leaves_and_count_bounded(served: Server) -> None:
    """A client that reads the start of a segment and stops: ffmpeg blocks on its full
    output. With YTP_PLAYER_MAX_FFMPEG=1 a second segment waits, then gets 503. When the
    first client goes away, its ffmpeg is killed and the slot is free again."""
    sock = socket.create_connection(("127.0.0.1", served.port))
    sock.sendall(b"GET /api/player/segments/0/huge.mp4.ts HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    [pid] = wait_for(lambda: ffmpeg_pids(served), 30, message="ffmpeg making the segment")
    busy = served.get("/api/player/segments/1/show/h264.mp4.ts")
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"
    assert busy.json()["code"] == "UNAVAILABLE"
    assert ffmpeg_pids(served) == [pid]  # blocked on its output, never ending by itself
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # with unread data: a reset
    wait_for(lambda: not ffmpeg_pids(served), 30, message="ffmpeg to be killed")
    # The slot goes back once the killed ffmpeg is reaped, a moment after it is gone.
    again = wait_for(lambda: (r := served.get("/api/player/segments/1/show/h264.mp4.ts"))
                     .status_code != 503 and r, 30, message="the slot given back")
    assert again.status_code == 200 and len(again.content) > 1000


def test_a_segment_whose_ffmpeg_is_killed_midway_is_broken_off(served: Server) -> None:
    """The kernel's out-of-memory killer takes ffmpeg while it makes a segment (here: SIGKILL
    once the answer has begun). The answer breaks off: the connection closes without the
    chunked body's end, so a player sees a failed segment and asks again, and no cache keeps
    the part. Before, the body ended as if the part were the segment (a browser kept it for a
    year under the URL that names the file's version). The next segment plays."""
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /api/player/segments/0/huge.mp4.ts HTTP/1.1\r\nHost: x\r\n"
                     b"Connection: close\r\n\r\n")
        said = sock.recv(65536)
        assert said.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in said
        [pid] = wait_for(lambda: ffmpeg_pids(served), 30, message="ffmpeg making the segment")
        os.kill(pid, signal.SIGKILL)
        sock.settimeout(60)
        while chunk := sock.recv(1 << 20):
            said += chunk
    assert not said.endswith(b"\r\n0\r\n\r\n")
    wait_for(lambda: "the answer to GET /api/player/segments/0/huge.mp4.ts broke off: ffmpeg "
             "failed on a segment of huge.mp4 (-9): it ended with status -9." in served.log(),
             30, message="the broken segment in the log")
    again = served.get("/api/player/segments/1/show/h264.mp4.ts")
    assert again.status_code == 200 and len(again.content) > 1000


def test_unplayable_and_missing(served: Server) -> None:
    served.download_path.joinpath("notes.txt").write_text("text")
    assert served.get("/api/player/playlist/notes.txt.m3u8").status_code == 400
    assert served.get("/api/player/playlist/nope.mp4.m3u8").status_code == 404
    assert served.get("/api/player/segments/9/show/h264.mp4.ts").status_code == 404
    assert served.get("/api/player/m3u8/audio/show/h264.mp4.m3u8").status_code == 400
    assert served.get("/api/player/playlist/show/h264.mp4").status_code == 404
    moved = served.get("/api/player/playlist//show//h264.mp4.m3u8", allow_redirects=False)
    assert moved.status_code == 302
    assert moved.headers["location"].endswith("/api/player/playlist/show/h264.mp4.m3u8")


# --- hostile paths, in process ----------------------------------------------------------------

@pytest.mark.parametrize("route", [
    "playlist/{}.m3u8", "m3u8/video/{}.m3u8", "m3u8/subtitle/{}.m3u8?duration=3",
    "segments/0/{}.ts", "subtitle/{}.vtt",
])
def test_player_refuses_hostile_paths(client: TestClient, runtime: Runtime, route: str,
                                      tmp_path: Path, origin: MediaOrigin) -> None:
    outside = tmp_path / "outside.mp4"
    shutil.copyfile(origin.path_for(origin.clip_url), outside)
    (runtime.settings.download_path / "leak.mp4").symlink_to(outside)
    for path, status in (("..%2F..%2Fx", 400), ("../x", 400), ("a/%2e%2e/%2e%2e/x", 400),
                         ("a%00b", 400), ("leak.mp4", 403)):
        url = "/api/player/" + route.format(path)
        result = client.simulate_get(url.split("?")[0], query_string=url.partition("?")[2])
        assert result.status_code == status, (url, result.text)
