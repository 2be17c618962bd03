"""What a download process changes in yt-dlp at its warm-up, each made from yt-dlp as it is
installed (this test process may have made it already), and what yt-dlp's errors become in the
service's log."""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

import pytest
from support.origin import MediaOrigin
from support.server import wait_for
from yt_dlp.downloader.http import HttpFD
from yt_dlp.networking import common

from appliance.engine import child, ytdlp_tuning
from appliance.runtime import Runtime


def test_tls_contexts_are_made_once_per_settings_and_work(
        monkeypatch: pytest.MonkeyPatch) -> None:
    made = common.make_ssl_context
    monkeypatch.setattr(common, "make_ssl_context", getattr(made, "__wrapped__", made))
    ytdlp_tuning.share_ssl_contexts()
    first = common.make_ssl_context(verify=True)
    assert isinstance(first, ssl.SSLContext)
    assert common.make_ssl_context(verify=True) is first
    assert common.make_ssl_context(verify=False) is not first


def test_http_downloads_stream_once_yt_dlp_is_changed_from_its_own(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, origin: MediaOrigin) -> None:
    if "sanitize_open" in vars(HttpFD):  # changed already: yt-dlp's own again
        monkeypatch.delattr(HttpFD, "sanitize_open")
    ytdlp_tuning.stream_http_downloads_to_disk()
    assert getattr(HttpFD.sanitize_open, "streaming", False)
    job = {"op": "download", "job": "j", "url": origin.clip_url, "args": [],
           "home": str(tmp_path / "home"), "temp": str(tmp_path / "temp"),
           "template": "out.%(ext)s", "default_template": "%(title)s.%(ext)s"}
    result = child.run_download(job, child.Channel(os.open(os.devnull, os.O_WRONLY)))
    assert Path(result["filepath"]).read_bytes() == origin.path_for(origin.clip_url).read_bytes()


def test_yt_dlps_errors_are_errors_in_the_log(
        runtime: Runtime, origin: MediaOrigin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="appliance.engine.jobs")
    [item] = runtime.engine.add([{"url": origin.fail_url}])
    wait_for(lambda: (i := runtime.store.get(item.id)) and i.kind == "done", timeout=90,
             message="the failed item")
    said = [r for r in caplog.records if r.name == "appliance.engine.jobs"
            and f"yt-dlp [{item.id}]: ERROR: " in r.getMessage()]
    assert said and all(r.levelno == logging.ERROR for r in said), [
        (r.levelname, r.getMessage()) for r in caplog.records]
