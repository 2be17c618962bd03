"""The real service at the box's limit of processes (systemd's ``TasksMax=``, ``ulimit -u``):
a fork refused (EAGAIN). The zygote that could not fork lives on, warm, and says why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.origin import MediaOrigin
from support.pids_limit import pids_limit
from support.procs import descendants
from support.server import Server, wait_for


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path).start()
    yield server
    server.stop()


def zygote(server: Server) -> int:
    """The service's zygote (made at start, warm until the idle timeout)."""
    assert server.proc is not None

    def found() -> int | None:
        for proc in descendants(server.proc.pid):
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            if b"--zygote" in cmdline.split(b"\0"):
                return proc.pid
        return None

    return wait_for(found, timeout=60, message="the zygote made at start")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_zygote_that_cannot_fork_lives_on_and_says_why(server: Server,
                                                          origin: MediaOrigin) -> None:
    """Its fork refused, the zygote stays (it exited: the next start paid a cold start, and
    the processes it had forked lost their reaper); the download is started afresh, and the
    log names the kernel's reason."""
    pid = zygote(server)
    with pids_limit([pid]) as limit:
        limit.hold()
        [added] = server.post("/api/history", {"url": origin.clip_url}).json()
        assert server.wait_status(added["id"], {"finished", "error"})["status"] == "finished"
        assert limit.refused() > 0, "the zygote was never asked to fork"
    assert alive(pid), "the zygote exited when its fork was refused"
    assert ("could not fork a download process ([Errno 11] Resource temporarily "
            "unavailable); starting one afresh") in server.log()


