"""An update of yt-dlp stopped part way: the service killed (``kill -9``, a power cut) while
pip was replacing yt-dlp's files. A real pip, in a real update run by the command, is stopped
at the file it is about to write (an audit hook in the throwaway environment sends it
SIGSTOP there), then the whole update is killed: the next start puts the replaced release
back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_settings
from support.package_index import PackageIndex, install, make_venv
from support.server import wait_for

from appliance.events import EventBus
from appliance.ytdlp_update import Updater, YtdlpUpdates
from appliance.ytdlp_update.updater import SOLVER, UNDER_WAY, pips_stash_of_ours
from appliance.ytdlp_update.wheels import installed_version, site_packages

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("ytdlp_update")]

NEWER = "2099.1.1"
STOP_AT = "STOP_AT_WRITE"
# Run at the start of each Python of the environment: stops the process when it opens the
# file named by $STOP_AT_WRITE for writing (only pip writes yt-dlp's files).
HOOK = ("import os, signal, sys; _at = os.environ.get('STOP_AT_WRITE'); _at and "
        "sys.addaudithook(lambda event, args, _at=_at, os=os, signal=signal: "
        "event == 'open' and isinstance(args[0], str) and args[0].endswith(_at) and "
        "'w' in str(args[1]) and os.kill(os.getpid(), signal.SIGSTOP))\n")


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PackageIndex]:
    index = PackageIndex(tmp_path / "index")
    index.add(index.current)
    index.add(NEWER)
    index.publish(index.current, NEWER)
    yield index
    index.close()


def stopped_in(session: int) -> int | None:
    """A process of the session that is stopped (state T), if any."""
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] == "T" and int(fields[3]) == session:
            return int(entry.name)
    return None


def imports(python: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), "-I", "-c", "import yt_dlp.version as v, yt_dlp; "
                           "print(v.__version__)"], capture_output=True, text=True,
                          timeout=120, check=False)


def test_an_update_killed_mid_unpack_is_rolled_back_at_the_next_start(
        index: PackageIndex, tmp_path: Path) -> None:
    python = make_venv(tmp_path / "venv", index.wheels[index.current])
    site = site_packages(python)
    install(python, index.add_solver("0.0.1", publish=False))  # not part of this update
    (site / "stop-at-write.pth").write_text(HOOK)
    settings = make_settings(tmp_path).replace(ytdlp_index_url=index.url)
    env = {**os.environ, "YTP_PORT": "9", "YTP_CONFIG_PATH": str(settings.config_path),
           "YTP_DOWNLOAD_PATH": str(settings.download_path), "YTP_YTDLP_INDEX_URL": index.url,
           STOP_AT: "/yt_dlp/__init__.py"}  # early in the wheel: most files still to come
    update = subprocess.Popen([sys.executable, "-m", "appliance", "ytdlp", "update", "--venv",
                               str(python.parents[1])], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: stopped_in(update.pid), timeout=300,
                 message="pip to reach yt-dlp's __init__.py")
    finally:
        os.killpg(update.pid, signal.SIGKILL)
        update.wait(timeout=60)
    broken = imports(python)
    assert broken.returncode != 0, "the kill left yt-dlp whole: nothing was tested"
    assert list(site.glob("~*")), "pip's stash of the old release"
    # pip at work for another package of this venv at the same moment: its stash is not ours
    theirs = ["~equests", "~equests-2.32.0.dist-info"]
    for name in theirs:
        (site / name).mkdir()
        (site / name / "kept.py").write_text("")

    renewed: list[bool] = []
    updates = YtdlpUpdates(settings, lambda: renewed.append(True), EventBus(), python=python)
    try:
        updates.start()
        assert updates.status()["update"]["state"] == "running"
        done = wait_for(lambda: (u := updates.status()["update"])["state"] != "running" and u,
                        timeout=300, message="the interrupted update to be finished")
    finally:
        updates.stop()
    assert done["state"] == "rolled_back", done
    assert (done["installed"], done["previous"], done["target"]) == (
        index.current, index.current, NEWER)
    assert done["message"] == (f"the update to yt-dlp {NEWER} was interrupted (the service "
                               f"stopped during it); {index.current} is back")
    assert imports(python).stdout.strip() == index.current
    assert Updater(python, index.url, tmp_path / "unused").installed() == index.current
    assert sorted(p.name for p in site.glob("~*")) == theirs
    assert not list(site.glob(f"yt_dlp-{NEWER}.dist-info"))
    assert installed_version(site, SOLVER) == "0.0.1"  # what pip had not touched is left
    assert renewed == [True]  # the warm download processes start from what is back
    assert not updates.updater.interrupted()  # and the next start does nothing of it


def test_an_interrupted_update_that_cannot_be_undone_is_said(tmp_path: Path) -> None:
    """A record that cannot be read is said and dropped (nothing to act on); a roll back
    that fails (its kept wheel gone) is said and tried again at the next start."""
    python = make_venv(tmp_path / "venv", None)
    keep = tmp_path / "kept"
    keep.mkdir()
    updater = Updater(python, "http://127.0.0.1:9/simple", keep)
    (keep / UNDER_WAY).write_text("{")
    outcome = updater.update()
    assert (outcome.state, outcome.installed) == ("failed", None)
    assert outcome.message.startswith(f"an interrupted update's record {keep / UNDER_WAY} "
                                      f"cannot be read (")
    assert outcome.message.endswith("); yt-dlp is left as it is")
    assert not updater.interrupted()
    (keep / UNDER_WAY).write_text(json.dumps({"previous": "2026.1.1", "target": NEWER,
                                              "kept": ["yt_dlp-2026.1.1-py3-none-any.whl"]}))
    outcome = updater.update()
    assert (outcome.state, outcome.installed, outcome.previous, outcome.target) == (
        "failed", None, "2026.1.1", NEWER)
    assert outcome.message.startswith(f"the update to yt-dlp {NEWER} was interrupted (the "
                                      f"service stopped during it); the roll back failed "
                                      f"too: ")
    assert updater.interrupted()


@pytest.mark.parametrize(("name", "ours"), [
    ("~t_dlp", True), ("~t_dlp-2026.11.23.dist-info", True), ("~-_dlp", True),
    ("~t_dlp_ejs", True), ("~t_dlp_ejs-0.8.0.dist-info", True), ("~~yt_dlp", True),
    ("~equests", False), ("~equests-2.32.0.dist-info", False), ("yt_dlp", False),
    ("~t_dlp_other", False), ("~x_dlp.pth", False), ("~", False)])
def test_pips_stash_is_ours_only_for_ytdlp_and_its_solver(name: str, ours: bool) -> None:
    assert pips_stash_of_ours(name) is ours
