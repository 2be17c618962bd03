"""ffmpeg's own words (engine.ffmpeg_words), in this process with the real ffmpeg: what is kept
of its lines and how, which runs are made to speak, and a run whose output was cut short
(``/dev/full``: ffmpeg exits 0 after "Error writing trailer of …") counted as a failure,
both when it downloads and when it converts."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yt_dlp
from yt_dlp.downloader import external
from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor, FFmpegPostProcessorError

from appliance.engine import ffmpeg_words
from appliance.engine.ffmpeg_words import _Heard

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
TESTSRC = ["-f", "lavfi", "-i", "testsrc=duration=0.2:size=64x48"]
CUT = ("Error writing trailer of /dev/full: No space left on device; Error closing file "
       "/dev/full: No space left on device")


@pytest.fixture
def heard() -> Iterator[type[_Heard]]:
    """ffmpeg's words heard in this process, as in a download process (the zygote's
    ``hear_ffmpeg``), from a clean start."""
    ffmpeg_words.hear_ffmpeg()
    _Heard.words, _Heard.output_broken, _Heard.skipped = None, False, {}
    yield _Heard
    _Heard.words, _Heard.output_broken, _Heard.skipped = None, False, {}


@pytest.mark.parametrize(("text", "said"), [
    ("https://cdn.example/master.m3u8?token=abc: Server returned 403 Forbidden",
     "https://cdn.example/master.m3u8?…: Server returned 403 Forbidden"),
    ("http://viewer:s3cret@127.0.0.1:9/x.m3u8?token=abc: Connection refused",
     "http://127.0.0.1:9/x.m3u8?…: Connection refused"),
    ("Connection to tcp://127.0.0.1:9 failed: Connection refused",
     "Connection to tcp://127.0.0.1:9 failed: Connection refused"),
    ("two: http://a.example/x?k=1, crypto+https://u@b.example/y#t.",
     "two: http://a.example/x?…, crypto+https://b.example/y?…."),
    ("Invalid data found when processing input", "Invalid data found when processing input"),
])
def test_an_address_in_ffmpeg_s_words_keeps_no_secret(text: str, said: str) -> None:
    assert ffmpeg_words._without_secrets(text) == said


@pytest.mark.parametrize(("args", "at"), [
    (["/usr/bin/ffmpeg", "-y", "-loglevel", "quiet", "-i", "x"], 2),
    (["ffmpeg", "-loglevel", "-loglevel", "quiet"], 2),
    (["ffmpeg", "-y", "-i", "x"], None),
    (["ffmpeg", "quiet", "-loglevel"], None),
    (["/usr/bin/aria2c", "-loglevel", "quiet"], None),
    ([], None),
    ("ffmpeg -loglevel quiet", None),
])
def test_only_an_ffmpeg_told_to_be_quiet_is_made_to_speak(args: object, at: int | None
                                                         ) -> None:
    assert ffmpeg_words._quiet_at(args) == at


def _listened(*lines: str) -> type[_Heard]:
    _Heard.words, _Heard.output_broken, _Heard.skipped = None, False, {}
    ffmpeg_words._listen(io.BytesIO("".join(f"{line}\n" for line in lines).encode()))
    return _Heard


def test_the_last_errors_are_kept_each_cut_short_and_the_rest_passed_over() -> None:
    heard = _listened(
        "[tcp @ 0x5612a33a9f40] [error] Connection to tcp://127.0.0.1:9 failed: Connection "
        "refused",
        "frame=    1 fps=0.0 q=0.0 size=       0kB",  # (no level: not ffmpeg's log)
        "[hls @ 0x5571dde62a00] [info] Opening 'seg1.ts' for reading",
        "[error] http://user:pw@127.0.0.1:9/x.m3u8?token=abc: Connection refused")
    assert heard.words == ("[tcp] Connection to tcp://127.0.0.1:9 failed: Connection refused; "
                           "http://127.0.0.1:9/x.m3u8?…: Connection refused")
    assert (heard.output_broken, heard.skipped) == (False, {})

    heard = _listened("[error] first", "[mp4 @ 0x1] [fatal] second", "[panic] third",
                      f"[error] {'x' * 400}")
    assert heard.words == f"[mp4] second; third; {'x' * 292}"  # 300 bytes of each line

    heard = _listened("[mpegts @ 0x4] [error] av_interleaved_write_frame(): No space left on "
                      "device", "[warning] Error writing trailer of out.ts: not an error")
    assert heard.output_broken is True
    assert heard.words == "[mpegts] av_interleaved_write_frame(): No space left on device"


def test_each_segment_left_out_is_kept_once_with_the_site_s_answer_before_it() -> None:
    heard = _listened(
        "[hls @ 0x2] [warning] Failed to open segment 0 of playlist 0",  # no answer yet
        "[http @ 0x1] [warning] HTTP error 404 Not Found",
        "[hls @ 0x2] [warning] Failed to open segment 2 of playlist 0",
        "[hls @ 0x2] [warning] Failed to open segment 2 of playlist 0",  # its next try
        "[http @ 0x1] [warning] Cannot reuse HTTP connection for different host",
        "[hls @ 0x2] [warning] HTTP error 503 Service Unavailable",  # not the HTTP client's
        "[hls @ 0x2] [warning] Failed to open segment 5 of playlist 1")
    assert heard.skipped == {("0", "0"): "", ("2", "0"): "HTTP error 404 Not Found",
                             ("5", "1"): "HTTP error 404 Not Found"}
    assert (heard.words, heard.output_broken) == (None, False)


def test_a_download_by_ffmpeg_whose_output_was_cut_short_fails_with_its_words(
        heard: type[_Heard]) -> None:
    quiet = [FFMPEG, "-y", "-loglevel", "quiet", *TESTSRC, "-f", "mpegts"]
    with external.Popen([*quiet, "/dev/full"], stdin=subprocess.DEVNULL) as cut:
        assert cut.args == [FFMPEG, "-nostats", "-y", "-loglevel", "level+warning", *TESTSRC,
                            "-f", "mpegts", "/dev/full"]
        assert cut.wait() == 1  # (ffmpeg itself exits 0)
    assert heard.words == CUT

    with external.Popen([*quiet, "/dev/null"], stdin=subprocess.DEVNULL) as whole:
        assert whole.wait() == 0
    assert (heard.words, heard.output_broken) == (None, False)

    with external.Popen(["sh", "-c", "echo said >&2; exit 3"], stderr=subprocess.PIPE
                        ) as other:  # another program, or an ffmpeg the caller reads
        assert other.args == ["sh", "-c", "echo said >&2; exit 3"]
        assert other.wait() == 3
        assert other.stderr is not None and other.stderr.read() == b"said\n"


def test_ffmpeg_s_words_follow_its_exit_code_in_the_error(heard: type[_Heard]) -> None:
    heard.words = "[https] HTTP error 403 Forbidden"
    with yt_dlp.YoutubeDL({"quiet": True}) as ydl:
        downloader = external.FFmpegFD(ydl, ydl.params)
        with pytest.raises(yt_dlp.utils.DownloadError) as raised:
            downloader.report_error("ffmpeg exited with code 1")
        assert str(raised.value).endswith(
            "ffmpeg exited with code 1: [https] HTTP error 403 Forbidden")
        with pytest.raises(yt_dlp.utils.DownloadError) as raised:
            downloader.report_error("Unable to download: something else")
        assert str(raised.value).endswith("Unable to download: something else")


def test_a_conversion_whose_output_was_cut_short_fails_with_its_words(
        heard: type[_Heard], tmp_path: Path) -> None:
    clip = tmp_path / "clip.ts"
    subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", *TESTSRC, str(clip)], check=True,
                   timeout=60)
    with yt_dlp.YoutubeDL({"quiet": True}) as ydl:
        converter = FFmpegPostProcessor(ydl)
        with pytest.raises(FFmpegPostProcessorError) as raised:
            converter.real_run_ffmpeg([(str(clip), [])], [("/dev/full", ["-f", "mpegts"])])
        assert str(raised.value) == \
            "Error writing trailer of file:/dev/full: No space left on device"
        converter.real_run_ffmpeg([(str(clip), [])], [("/dev/null", ["-f", "mpegts"])])
