"""The terminal's yt-dlp arguments reach no command line and no log line whole: they were the
console process's command line (``python -m appliance.engine.contained_cli HOME TEMP
--video-password … --add-header "Authorization: Bearer …"``), which every user of the box
reads in ``/proc/PID/cmdline``, and its log line, in the journal. They go on its standard
input now, and its downloads keep ffmpeg off the network as a download's do."""

from __future__ import annotations

import logging
from collections.abc import Callable

import falcon.testing
import pytest
from support.command_lines import CommandLines
from support.origin import MediaOrigin

from appliance.runtime import Runtime

TOKEN = "t0ken-0f-the-console-77c1"
PASSWORD = "pa55word-0f-the-video-3e9"


def test_the_terminals_secrets_are_on_no_command_line_and_no_log_line(
        app_with: Callable[..., tuple[Runtime, falcon.testing.TestClient]],
        origin: MediaOrigin, caplog: pytest.LogCaptureFixture) -> None:
    rt, client = app_with(YTP_CONSOLE_ENABLED="true")
    command = (f'--hls-prefer-ffmpeg --add-header "Authorization: Bearer {TOKEN}" '
               f"--video-password {PASSWORD} -o 'console.%(ext)s' {origin.hls_url}")
    with caplog.at_level(logging.INFO), CommandLines() as seen:
        response = client.simulate_post("/api/system/terminal", json={"command": command})
    assert response.text.rstrip().endswith('data: {"exitcode":0}'), response.text
    told = [line for line in seen.seen if TOKEN in line or PASSWORD in line]
    assert told == [], told
    assert any("contained_cli" in line for line in seen.seen)  # the watch saw it run
    assert (rt.settings.download_path / "console.mp4").is_file()
    logged = [r.getMessage() for r in caplog.records if r.name == "appliance.api.console"]
    assert any("terminal: yt-dlp" in line for line in logged), logged
    assert not [line for line in logged if TOKEN in line or PASSWORD in line], logged
