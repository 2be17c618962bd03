"""The signs of work a download's process group leaves, read from real processes: what tells a
stalled download from a slow one (``engine.work_signs``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.server import wait_for

from appliance.engine.work_signs import group_signs, worked

# A group leader that starts a helper that lives (sleep) and one that ends at once and is never
# reaped (a zombie, as ffmpeg is between its end and yt-dlp's wait).
_LEADER = """
import os, subprocess, sys, time
subprocess.Popen(["sleep", "60"])
if os.fork() == 0:
    os._exit(0)
if len(sys.argv) > 1:
    with open(sys.argv[1], "wb") as out:
        out.write(b"x" * (4 << 20))
        out.flush()
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def leader(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([sys.executable, "-c", _LEADER, str(tmp_path / "written")],
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    yield process
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _zombies(pgid: int) -> list[str]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[2]) == pgid and fields[0] == "Z":
            found.append(entry)
    return found


def test_the_helpers_are_the_living_processes_of_the_group(
        leader: subprocess.Popen[str]) -> None:
    wait_for(lambda: _zombies(leader.pid), timeout=10, message="the unreaped helper")
    assert group_signs(leader.pid, None).helpers == ("sleep",)


def test_bytes_written_to_storage_are_counted(leader: subprocess.Popen[str]) -> None:
    assert group_signs(leader.pid, None).stored >= 4 << 20


def test_the_bytes_of_the_jobs_temp_files_are_counted(
        leader: subprocess.Popen[str], tmp_path: Path) -> None:
    folder = tmp_path / "job"
    (folder / "frags").mkdir(parents=True)
    (folder / "a.part").write_bytes(b"x" * 1000)
    (folder / "frags" / "b-Frag1").write_bytes(b"y" * 234)
    before = group_signs(leader.pid, folder)
    assert before.files == 1234
    (folder / "a.part").write_bytes(b"x" * 2000)
    after = group_signs(leader.pid, folder)
    assert after.files == 2234
    assert worked(before, after, 1.0)
