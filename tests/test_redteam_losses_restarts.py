"""Red team, a download is never lost: the worker alone killed while a download runs.

gunicorn's master outlives a worker killed by the out-of-memory killer (or ``kill -9``) and
starts another: its engine finds the download the dead one ran. The dead worker's download
process must not go on writing the partial file the new one resumes (two writers of one
file: a cut or garbled video, "finished"), and the item must neither start over nor stay
'downloading' for good.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest
from support.origin import MediaOrigin
from support.procs import descendants
from support.server import Server, wait_for

SLOW, FAST = 512 * 1024, 200_000_000


def test_a_download_whose_worker_was_killed_resumes_in_the_next_worker_alone(
        make_server: Callable[..., Server], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server()
    assert server.proc is not None
    master = server.proc.pid
    monkeypatch.setattr(origin, "slow_rate", SLOW)
    [slow] = server.post("/api/history", {"url": origin.slow_url}).json()
    wait_for(lambda: (server.item(slow["id"]).get("downloaded_bytes") or 0) > 200_000,
             timeout=60, message="some bytes")
    [worker] = [p.pid for p in descendants(master) if p.ppid == master]
    old = {p.pid for p in descendants(worker)}  # its zygote and download process
    assert old
    origin.clear_requests()
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: not {p.pid for p in descendants(master)} & (old | {worker}), timeout=30,
             message="the dead worker's processes to follow it")
    wait_for(lambda: [p.pid for p in descendants(master) if p.ppid == master
                      and p.pid != worker], timeout=60, message="a new worker")
    wait_for(lambda: server.get("/api/ping", timeout=2).ok, timeout=60,
             message="the new worker to answer")
    assert server.item(slow["id"])["kind"] == "queue"
    origin.slow_rate = FAST  # the rest, once resumed
    done = server.wait_status(slow["id"], {"finished", "error"}, timeout=120)
    assert done["status"] == "finished", done
    assert (server.download_path / done["filename"]).read_bytes() == \
        origin.path_for(origin.slow_url).read_bytes()
    ranges = [r.range for r in origin.requests_for("/slow.mp4") if r.range]
    assert any(not r.startswith("bytes=0-") for r in ranges), ranges  # resumed
    assert not list((server.root / "tmp").glob(f"{slow['id']}*"))
