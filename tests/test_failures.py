"""Failures said plainly: what happened, where, what to do; yt-dlp's words kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_settings

from appliance.engine.failures import explain


@pytest.mark.parametrize(("message", "start"), [
    ("unable to write data: [Errno 28] No space left on device", "The disk is full: "),
    ("unable to open for writing: [Errno 13] Permission denied: '/srv/x.part'",
     "The service may not write there"),
    ("Unable to rename file: [Errno 1] Operation not permitted", "The service may not write"),
    ("unable to open for writing: [Errno 30] Read-only file system: '/srv/x.part'",
     "The disk is read-only: "),
])
def test_known_failures_are_explained_and_keep_the_original(
        tmp_path: Path, message: str, start: str) -> None:
    settings = make_settings(tmp_path)
    settings.temp_path.mkdir(parents=True)
    explained = explain(message, settings)
    assert explained.startswith(start)
    assert explained.endswith(f"({message})")
    assert str(settings.temp_path) in explained


@pytest.mark.parametrize("message", [
    "[generic] Unable to download webpage: HTTP Error 400: Bad Request",
    # the same errno from a socket is not about the folders
    "Unable to download webpage: <urlopen error [Errno 13] Permission denied>",
    "",
])
def test_other_failures_are_left_as_they_are(tmp_path: Path, message: str) -> None:
    assert explain(message, make_settings(tmp_path)) == message


def test_free_space_is_reported_even_when_the_folder_is_gone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # temp_path was never created
    explained = explain("unable to write data: [Errno 28] No space left on device", settings)
    assert explained.startswith("The disk is full: unknown space free in ")


FILE_URL = ("The site names a file of this box (a file:// address) as part of the video: a "
            "download never reads the box's own files, so this one cannot be downloaded (the "
            "site is broken, or hostile).")
FFMPEG_FAILED = ("ffmpeg could not download or convert the stream: it is broken, was refused "
                 "part way, or names a source a download may not read (ffmpeg's exit code and "
                 "words follow). Try again later; a stream that fails each time cannot be "
                 "downloaded as it stands.")


@pytest.mark.parametrize(("message", "said"), [
    ("unable to download video data: file:// URLs are disabled by default in yt-dlp for "
     "security reasons. Use --enable-file-urls to enable at your own risk.",
     f"{FILE_URL} (unable to download video data: file:// URLs are disabled by default in "
     "yt-dlp for security reasons)"),
    ("ffmpeg exited with code 1: [hls] Filename 'file:///etc/passwd' is not allowed",
     f"{FFMPEG_FAILED} (ffmpeg exited with code 1: [hls] Filename 'file:///etc/passwd' is not "
     "allowed)"),
    ("ffmpeg exited with code -9", f"{FFMPEG_FAILED} (ffmpeg exited with code -9)"),
    ("ffmpeg exited with code ?", "ffmpeg exited with code ?"),
    ("libffmpeg exited with code 1", "libffmpeg exited with code 1"),
])
def test_a_refused_local_file_and_a_failed_ffmpeg_are_said_whole(
        tmp_path: Path, message: str, said: str) -> None:
    assert explain(message, make_settings(tmp_path)) == said
