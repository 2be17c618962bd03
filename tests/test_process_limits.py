"""The real service at the box's limit of processes (systemd's ``TasksMax=``, ``ulimit -u``):
a fork or a thread's start refused (EAGAIN). The zygote that could not fork lives on, warm,
and says why; a download that no process can be had for ends in error saying so, and the
queue goes on once processes can be had again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.origin import MediaOrigin
from support.pids_limit import pids_limit
from support.procs import descendants
from support.server import Server, wait_for

from appliance.engine.downloading import NO_THREAD, NOT_STARTED
from appliance.engine.workers import PROCESS_LIMIT


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
        # Its error and the log said, for the once it ended in error under CI's load.
        ended = server.wait_status(added["id"], {"finished", "error"})
        assert ended["status"] == "finished", (ended, server.log()[-4000:])
        assert limit.refused() > 0, "the zygote was never asked to fork"
    assert alive(pid), "the zygote exited when its fork was refused"
    assert ("could not fork a download process ([Errno 11] Resource temporarily "
            "unavailable); starting one afresh") in server.log()



def test_a_download_whose_thread_cannot_start_waits_and_starts_later(
        tmp_path: Path, origin: MediaOrigin) -> None:
    """The whole service at its limit: the download's thread is refused. The item waits in
    the queue saying why, and starts once threads can be had again; the dispatcher died of
    it (a traceback), and no download ever started again, this item left 'preparing'."""
    # The process the first download used is kept for the second's extraction, so that only
    # the download's own thread meets the limit.
    server = Server(tmp_path, env={"YTP_WORKER_LINGER": "600"}).start()
    try:
        [first] = server.post("/api/history", {"url": origin.clip_url}).json()
        server.wait_status(first["id"], {"finished"})
        with pids_limit(server.pids()) as limit:
            limit.hold()
            [added] = server.post("/api/history", {"url": origin.clip2_url}).json()
            waiting = wait_for(lambda: (i := server.item(added["id"]))["msg"].startswith(
                "Waiting: ") and i, timeout=60, message="the item to say why it waits")
            assert limit.refused() > 0
            assert (waiting["status"], waiting["msg"]) == ("pending", NOT_STARTED)
            assert (f"item {added['id']}: its download could not be started (can't start new "
                    f"thread): {NO_THREAD}") in server.log()
        assert server.wait_status(added["id"], {"finished", "error"})["status"] == "finished"
        assert "Traceback" not in server.log()
    finally:
        server.stop()



def test_a_url_no_process_can_be_had_for_ends_in_error_saying_so(
        tmp_path: Path, origin: MediaOrigin) -> None:
    """No process kept ready (no zygote, none lingering), the whole service at its limit:
    the URL's info cannot be read, and its item ends in error saying why and what to do. It
    waited for its info for good, unsaid: the extraction's thread had been refused, and the
    refusal taken for the engine's stop."""
    server = Server(tmp_path, env={"YTP_WARM_WORKERS": "0", "YTP_WORKER_LINGER": "0"}).start()
    try:
        assert server.proc is not None
        wait_for(lambda: len(server.pids()) == 2, timeout=60,
                 message="no process but the master and the worker")
        with pids_limit(server.pids()) as limit:
            limit.hold()
            [added] = server.post("/api/history", {"url": origin.clip2_url}).json()
            failed = server.wait_status(added["id"], {"error", "finished"})
            assert limit.refused() > 0
        assert failed["error"] == ("no download process could be started: Resource "
                                   f"temporarily unavailable: {PROCESS_LIMIT}")
        assert "Traceback" not in server.log()
    finally:
        server.stop()
