"""A private package index's password (YTP_YTDLP_INDEX_URL=https://me:…@mirror.lan/simple,
which the service masks wherever it shows the address) is on no command line: pip got the
address as ``--index-url`` on its own, which every user of the box reads in
``/proc/PID/cmdline`` for the time of a yt-dlp update."""

from __future__ import annotations

from pathlib import Path

from support.command_lines import CommandLines
from support.package_index import PackageIndex, make_venv, version_in

from appliance.ytdlp_update.updater import Updater

PASSWORD = "s3cret-0f-the-index-51d0"


def test_a_private_indexs_password_is_on_no_command_line(tmp_path: Path) -> None:
    index = PackageIndex(tmp_path / "index")
    try:
        index.add("2099.5.5")
        index.publish("2099.5.5")
        python = make_venv(tmp_path / "venv", None)
        private = index.url.replace("http://", f"http://me:{PASSWORD}@")
        with CommandLines() as seen:
            Updater(python, private, tmp_path / "kept")._pip("--no-deps", "yt-dlp==2099.5.5")
    finally:
        index.close()
    assert version_in(python) == "2099.5.5"  # installed from that index
    assert [line for line in seen.seen if PASSWORD in line] == []
    assert any(" pip install " in line for line in seen.seen)  # the watch saw pip run
