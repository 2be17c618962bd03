"""A download process's (or the zygote's) start on a box busy with other work: it yields the
CPU to everything else, so its seconds of importing yt-dlp may take minutes. It was killed at
a fixed 60 s and started again from nothing (then spawned, as slow): on a Pi transcoding for
Jellyfin no download could start. Now a start is hung only when it used no CPU time for a
round of the bound (stopped, deadlocked), or worked past READY_LIMIT without getting ready.

Real processes: small Python programs in place of the download process and the zygote, whose
bound is cut to a second; the slow start burns its CPU time by the process clock, so that it
is a start in progress however busy the test machine is."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.procs import living_in_group

from appliance.engine import launcher
from appliance.engine.launcher import Launcher, ZygoteFailed
from appliance.engine.workers import Worker, WorkerDied

ROUND = 1.0  # the bound, cut to a second
# Seconds of CPU time a slow start takes before it says ready: several rounds.
BURN = "import time\nend = time.process_time() + 3\nwhile time.process_time() < end: pass\n"
READY = 'import sys\nsys.stdout.write(\'{"type": "ready"}\\n\'); sys.stdout.flush()\n'
# Bounds the fake process's own life: a test that fails leaves nothing running for long.
LIFE = "time.sleep(30)\n"


def worker_running(code: str) -> Worker:
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, start_new_session=True)
    return Worker(proc)


def test_a_start_that_works_slowly_is_waited_for() -> None:
    worker = worker_running(BURN + READY + LIFE)
    try:
        worker.wait_ready(timeout=ROUND)
        assert worker.alive()
    finally:
        worker.kill()


def test_a_start_that_uses_no_cpu_is_hung_and_killed() -> None:
    worker = worker_running("import time\n" + LIFE)
    with pytest.raises(WorkerDied, match=f"download process {worker.pid} did not start"):
        worker.wait_ready(timeout=ROUND)
    assert worker.proc.poll() is not None and not living_in_group(worker.pid)


def test_a_start_that_works_past_the_limit_is_hung_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "READY_LIMIT", 3 * ROUND)
    worker = worker_running("while True: pass\n")
    with pytest.raises(WorkerDied, match="did not start"):
        worker.wait_ready(timeout=ROUND)
    assert worker.proc.poll() is not None and not living_in_group(worker.pid)


def zygote(code: str) -> list[str]:
    """A zygote's command: ``code`` runs with the socket the launcher passes, as ``control``,
    until the socket ends."""
    return [sys.executable, "-c",
            "import socket, sys, time\ncontrol = socket.socket(fileno=int(sys.argv[2]))\n"
            + code + "while control.recv(64): pass\n"]


def test_a_zygote_that_starts_slowly_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "READY_TIMEOUT", ROUND)
    monkeypatch.setattr(launcher, "CHILD", zygote(BURN + "control.send(b'ready')\n"))
    starts = Launcher()
    try:
        starts.prepare(0)
        assert starts.warm
    finally:
        starts.close()


def test_a_zygote_that_uses_no_cpu_is_hung_and_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "READY_TIMEOUT", ROUND)
    monkeypatch.setattr(launcher, "CHILD", zygote(""))
    real, made = launcher.Zygote, []

    def make(generation: int) -> launcher.Zygote:
        made.append(real(generation))
        return made[-1]

    monkeypatch.setattr(launcher, "Zygote", make)
    starts = Launcher()
    try:
        with pytest.raises(ZygoteFailed, match="did not start"):
            starts.prepare(0)
        [hung] = made
        assert hung.proc.wait(timeout=30) == -9  # killed, not left waiting
    finally:
        starts.close()

