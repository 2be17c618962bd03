"""What a download process says on its pipe, read as hostile: a line that is not a JSON object,
a line without end, a flood of messages, an end mid-message or by an unnamed signal. Each ends
the job with a plain reason (WorkerDied) and the process reaped, never an exception the engine
does not expect (which left the item "downloading" for good, its slot and process held).

The processes are real ones (a small Python program in place of the download process, which
never misbehaves on its own), a real download whose pipe gets garbage, and the pool's own
processes on descriptors past select()'s reach."""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.descriptors import descriptors_taken
from support.origin import MediaOrigin
from support.procs import living_in_group
from support.server import Server, wait_for

from appliance.engine import launcher, workers
from appliance.engine.launcher import ForkedProcess
from appliance.engine.workers import Worker, WorkerDied, WorkerPool

# Bounds the fake process's own life: a test that fails leaves nothing running for long.
LIFE = "import time; time.sleep(30)"


def worker_running(code: str) -> Worker:
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, start_new_session=True)
    return Worker(proc)


def reason_of(worker: Worker, timeout: float = 30) -> str:
    """The WorkerDied reason of a job on ``worker``; the process is gone by then."""
    with pytest.raises(WorkerDied) as died:
        worker.run({"op": "extract", "job": "j"}, lambda message: None, timeout=timeout)
    wait_for(lambda: worker.proc.poll() is not None, timeout=10,
             message="the process to be stopped")
    return str(died.value)


@pytest.mark.parametrize("line", [
    b"garbage", b"[1]", b'"a text"', b"null", b'{"type": "result"',  # cut, then a break
    b'{"type": "result", "msg": "\xff"}',  # not UTF-8
    b"[" * 100_000,  # nested past the parser's stack
    b'{"type": "log"}\n',  # a message, then an empty line
], ids=["text", "list", "string", "null", "cut", "not-utf8", "deep", "empty-after-one"])
def test_a_line_that_is_no_json_object_stops_the_process(line: bytes) -> None:
    worker = worker_running(f"import sys; sys.stdout.buffer.write({line!r} + b'\\n'); "
                            f"sys.stdout.flush(); {LIFE}")
    assert reason_of(worker) == ("the download process sent a message that is not a JSON "
                                 "object; it was stopped")


def test_a_garbled_ready_is_a_process_that_did_not_start() -> None:
    worker = worker_running(f"print('Traceback (most recent call last):', flush=True); {LIFE}")
    with pytest.raises(WorkerDied, match="not a JSON object"):
        worker.wait_ready(timeout=30)
    assert worker.proc.poll() is not None


def test_a_process_that_closes_its_pipe_before_ready_is_not_left_running() -> None:
    """Its pipe ended but it lives on (it closed the pipe, or it is stuck exiting): the
    start fails plainly, and the process is killed, not left to nobody."""
    worker = worker_running(f"import os; os.close(1); {LIFE}")
    with pytest.raises(WorkerDied, match="stopped answering"):
        worker.wait_ready(timeout=30)
    assert worker.proc.poll() is not None and not living_in_group(worker.pid)
    assert worker.proc.stdout.closed and worker.proc.stdin.closed


def test_a_line_without_end_is_read_up_to_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "MAX_MESSAGE", 1 << 20)
    worker = worker_running("import sys\nfor _ in range(64): sys.stdout.buffer.write(b'x' * "
                            f"(1 << 16))\nsys.stdout.flush(); {LIFE}")
    assert reason_of(worker) == ("the download process sent a message longer than 1 MiB; it "
                                 "was stopped")
    assert len(worker._buffer) <= (1 << 20) + (1 << 16)


def test_a_long_message_in_many_reads_arrives_whole() -> None:
    """A message of MBs (a long playlist's info) comes in 64 KiB reads, each one searched
    for the line's end only where it is new."""
    worker = worker_running(
        "import json, sys\ntext = 'é' * (3 << 20)\n"
        "sys.stdout.buffer.write(json.dumps({'type': 'log', 'msg': text}).encode() + b'\\n'"
        " + b'{\"type\": \"result\", \"n\": 1}\\n')\nsys.stdout.flush()\n" + LIFE)
    seen: list[dict[str, Any]] = []
    try:
        result = worker.run({"op": "extract"}, seen.append, timeout=60)
    finally:
        worker.kill()
    assert [len(m["msg"]) for m in seen] == [3 << 20]
    assert result == {"type": "result", "n": 1}


def test_a_process_that_never_stops_talking_is_held_to_its_bound() -> None:
    """Messages without end (a warning a line, in a loop): the bound holds all the same."""
    worker = worker_running(
        "import sys, time\nend = time.monotonic() + 30\nlines = b'{\"type\": \"log\"}\\n' "
        "* 20000\nwhile time.monotonic() < end: sys.stdout.buffer.write(lines)\n")
    assert reason_of(worker, timeout=1) == "no answer within 1 s"


@pytest.mark.parametrize(("signum", "reason"), [
    (signal.SIGKILL, "was killed by SIGKILL (out of memory?)"),
    (signal.SIGRTMIN + 5, f"was killed by signal {signal.SIGRTMIN + 5}"),
    (signal.SIGSEGV, "was killed by SIGSEGV"),
])
def test_a_process_that_dies_mid_message_is_named_by_its_end(signum: int, reason: str) -> None:
    worker = worker_running(
        "import os, sys\nsys.stdout.buffer.write(b'{\"type\": \"progress\", \"down')\n"
        f"sys.stdout.flush()\nos.kill(os.getpid(), {int(signum)})\n")
    assert reason_of(worker) == f"the download process {reason}"


def test_a_process_that_exits_without_an_answer_says_so() -> None:
    assert reason_of(worker_running("pass")) == ("the download process ended without an "
                                                  "answer (exit code 0)")
    assert reason_of(worker_running("raise SystemExit(3)")) == \
        "the download process exited with code 3"


def assert_failed(rt: Any, item_id: str, error: str) -> None:
    """The item ended in error with ``error``; its slot and its process were given up."""
    failed = wait_for(lambda: (i := rt.engine.get(item_id)).kind == "done" and i,
                      timeout=60, message="the item to end")
    assert (failed.status, failed.error) == ("error", error)
    # Given up as the run ends, which is after the item is shown failed.
    wait_for(lambda: rt.engine.pool.stats()["busy"] == 0 and item_id not in rt.engine._runs,
             message="the slot and the process given up")


def test_garbage_on_a_downloads_pipe_ends_the_item_in_error(start_runtime: Any,
                                                             origin: MediaOrigin) -> None:
    """The engine's side: the item ends in error with the reason, its slot and its process
    are given up (a garbled line left it "downloading", the process busy, for good)."""
    rt = start_runtime()
    [added] = rt.engine.add([{"url": origin.slow_url}])
    run = wait_for(lambda: (r := rt.engine._runs.get(added.id)) and r.worker
                   and rt.engine.get(added.id).status == "downloading" and r,
                   timeout=60, message="the download to start")
    worker = run.worker
    # The same pipe the process writes its messages to, opened anew for writing.
    with open(f"/proc/self/fd/{worker.proc.stdout.fileno()}", "wb") as pipe:
        pipe.write(b"Traceback (most recent call last):\n")
    assert_failed(rt, added.id, "the download process sent a message that is not a JSON "
                                "object; it was stopped")
    wait_for(lambda: not living_in_group(worker.pid), timeout=10,
             message="the process and its group to be gone")
    # The pool goes on: the next download gets a process and finishes.
    [again] = rt.engine.add([{"url": origin.clip_url}])
    wait_for(lambda: rt.engine.get(again.id).status == "finished", timeout=60,
             message="the next download")


def test_numbers_no_item_can_hold_are_left_out_and_the_download_goes_on(
        start_runtime: Any, origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress whose ETA is infinite, speed not a number and bytes past what the history
    keeps (a site's figures, as JSON carries them) leaves those out and the download
    finishes; the item's text forms raised on them, and the download ended in error."""
    monkeypatch.setattr(origin, "slow_rate", 256 * 1024)
    rt = start_runtime()
    [added] = rt.engine.add([{"url": origin.slow_url}])
    run = wait_for(lambda: (r := rt.engine._runs.get(added.id)) and r.worker
                   and rt.engine.get(added.id).status == "downloading" and r,
                   timeout=60, message="the download to start")
    with open(f"/proc/self/fd/{run.worker.proc.stdout.fileno()}", "wb") as pipe:
        pipe.write(b'{"type": "progress", "job": "%s", "status": "downloading", '
                   b'"eta": Infinity, "speed": NaN, "downloaded_bytes": 1%s}\n'
                   % (added.id.encode(), b"0" * 30))
    origin.slow_rate = 200_000_000
    done = wait_for(lambda: (i := rt.engine.get(added.id)).kind == "done" and i, timeout=60,
                    message="the download to end")
    assert (done.status, done.error) == ("finished", "")


def test_a_process_that_cannot_be_started_fails_the_item_plainly(
        start_runtime: Any, origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch) -> None:
    """No process can be had (the interpreter gone, out of file descriptors or processes):
    the item ends in error saying so; it was left "preparing", its slot held, for good."""
    rt = start_runtime()
    [added] = rt.engine.add([{"url": origin.clip_url, "auto_start": False}])
    wait_for(lambda: rt.engine.get(added.id).extractor, timeout=60,
             message="its info to be read")
    monkeypatch.setattr(launcher, "CHILD", ["/nonexistent/python"])
    rt.engine.pool.renew()  # the zygote made at start is not used again
    rt.engine.start_items([added.id])
    assert_failed(rt, added.id, "no download process could be started: No such file or "
                                "directory")


@pytest.fixture
def busy_descriptors() -> Iterator[None]:
    """The first 1,100 descriptors taken, as in a busy service whose limit was raised (a
    container's): what the pool opens next is numbered past 1023, where select() refuses."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raised = hard if hard == resource.RLIM_INFINITY else max(hard, 2048)
    try:  # (a hard limit below 2,048 is raised where that is allowed: as root, as CI runs)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), raised))
    except (ValueError, OSError) as exc:
        pytest.fail(f"this test needs 2,048 descriptors; the hard limit is {hard} and cannot "
                    f"be raised here ({exc}): run it as root or raise `ulimit -Hn`")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with descriptors_taken(max(soft, 2048), raised, up_to=1100):
        yield


def test_descriptors_past_1023_are_waited_on_like_any(busy_descriptors: None) -> None:
    pool = WorkerPool(spare=0, idle_timeout=60, capacity=1, linger=60)
    try:
        worker = pool.acquire()  # its ready message read on a descriptor past 1023
        assert worker.proc.stdout.fileno() > 1023
        # forked by a zygote whose socket is past 1023 too (its number is the service's): its
        # loop's select() refused it, and every process was spawned cold instead
        assert isinstance(worker.proc, ForkedProcess) or not pool._launcher.forks
        result = worker.run({"op": "archive_ids", "job": "j", "urls": []}, lambda m: None,
                            timeout=30)
        assert result == {"type": "result", "job": "j", "ids": []}
        worker.signal_kill()
        with pytest.raises(WorkerDied, match="SIGKILL"):  # its end, seen on its pidfd
            worker.run({"op": "archive_ids", "job": "k", "urls": []}, lambda m: None,
                       timeout=30)
        pool.discard(worker)
    finally:
        pool.close()


def test_a_job_whose_folder_cannot_be_made_gives_its_process_back(
        start_runtime: Any, origin: MediaOrigin) -> None:
    """The temp folder gone for a file (or its disk full, or the job's folder no longer
    resolving after a settings change): the item's info fails saying why, and the process
    taken for it goes back. It stayed "busy" for good: the pool then kept its zygote and idle
    processes for the service's life, one more process held at each such item."""
    rt = start_runtime()
    temp = rt.settings.temp_path
    shutil.rmtree(temp)
    temp.write_text("")  # renamed behind the service's back
    [added] = rt.engine.add([{"url": origin.clip_url}])
    failed = wait_for(lambda: (i := rt.engine.get(added.id)) and i.status == "error" and i,
                      timeout=60, message="the item to fail")
    assert "Not a directory" in failed.error
    wait_for(lambda: rt.engine.pool.stats()["busy"] == 0, timeout=10,
             message="the process to be given back")
    temp.unlink()
    [again] = rt.engine.add([{"url": origin.clip2_url}])
    wait_for(lambda: rt.engine.get(again.id).status == "finished", timeout=60,
             message="the next download")
    wait_for(lambda: rt.engine.pool.stats()["busy"] == 0, timeout=10,
             message="its process given back")


def test_a_sites_length_past_what_the_history_keeps_still_ends_the_item(
        tmp_path: Path, origin: MediaOrigin) -> None:
    """A server's Content-Length of 10**25 (the real service, real yt-dlp): the item ends as
    yt-dlp ends it, its bytes said; the count failed its every write, the item's end's too
    (a traceback), and it stayed 'preparing' for good."""
    server = Server(tmp_path).start()
    try:
        [added] = server.post("/api/history", {"url": origin.liar_url}).json()
        ended = server.wait_status(added["id"], {"error", "finished"}, timeout=120)
        assert ended["status"] == "error" and "more expected" in ended["error"], ended
        assert ended["total_bytes"] is None and ended["downloaded_bytes"] > 0
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def test_a_site_s_length_past_64_bits_at_a_slow_speed_leaves_the_item_readable(
        tmp_path: Path, origin: MediaOrigin) -> None:
    """Its ETA is yt-dlp's whole seconds, 10**25 bytes to go at 20 kB/s: 5 * 10**20 s, past
    what JSON answers carry (each look at the item was a 500 while it ran)."""
    server = Server(tmp_path).start()
    try:
        [added] = server.post("/api/history", {"url": f"{origin.liar_url}?rate=20000"}).json()
        running = wait_for(lambda: (i := server.item(added["id"]))["downloaded_bytes"] and i,
                           timeout=60, message="the slow download under way")
        assert running["status"] == "downloading" and running["eta"] is None, running
        assert running["speed"] > 0
        assert server.post("/api/history/cancel", {"ids": [added["id"]]}).status_code == 200
        server.wait_status(added["id"], {"cancelled"})
        assert "Traceback" not in server.log()
    finally:
        server.stop()
