"""Download processes forked from a zygote, on real processes: each in a process group of its
own; a zygote killed (between or during downloads) or hung costs no download and the next one
works; all of them die with the service; the zygote made at start waits for the first download,
and after a download it goes with the used process once the linger has passed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.descriptors import descriptors_taken
from support.origin import MediaOrigin
from support.procs import processes
from support.server import wait_for
from test_child import download_job

from appliance import cpu_share
from appliance.engine import launcher
from appliance.engine.launcher import ForkedProcess
from appliance.engine.workers import Worker, WorkerDied, WorkerPool

ARCHIVE_IDS = {"op": "archive_ids", "job": "ids", "urls": ["https://example.com/a/clip.mp4"]}


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    pool = WorkerPool(spare=0, idle_timeout=60, capacity=4, linger=60)
    yield pool
    pool.close()


def zygote_of(worker: Worker) -> int:
    assert isinstance(worker.proc, ForkedProcess), "a spawned process, not a forked one"
    return processes()[worker.pid].ppid


def session_niceness(pid: int) -> int | None:
    """The niceness of the process's session where the kernel shares the CPU between sessions
    first (autogroup: ``/autogroup-7 nice 10``), else None."""
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except FileNotFoundError:
        return None


def below_the_service(pid: int) -> bool:
    """The process yields the CPU to the service: its niceness is the service's plus ten, and
    so is its session's (a process here leads a session of its own)."""
    niceness = os.getpriority(os.PRIO_PROCESS, pid)
    # The kernel stops at 19: a test run at nice 10 forks processes at 19.
    return (niceness == min(os.getpriority(os.PRIO_PROCESS, 0) + cpu_share.BACKGROUND_NICENESS,
                            cpu_share.MAX_NICENESS)
            and session_niceness(pid) in (None, niceness))


def gone(pid: int) -> bool:
    proc = processes().get(pid)
    return proc is None or proc.state == "Z"


def answers(worker: Worker) -> bool:
    result = worker.run(ARCHIVE_IDS, lambda message: None, timeout=60)
    return result["type"] == "result" and result["ids"][0]["ie_key"] == "Generic"


def test_a_download_process_leaves_out_what_it_never_uses(pool: WorkerPool) -> None:
    """The text-encoding guesser that requests imports for yt-dlp is not loaded in the
    zygote or what it forks (its compiled modules would be mapped), and a job runs."""
    import charset_normalizer

    compiled = [path.name for path in Path(charset_normalizer.__file__).parent.glob("*.so")]
    assert compiled, "a pure-Python charset_normalizer here: its absence cannot be seen"
    worker = pool.acquire()
    try:
        for pid in (worker.pid, zygote_of(worker)):
            mapped = Path(f"/proc/{pid}/maps").read_text()
            assert not any(name in mapped for name in compiled), pid
        assert answers(worker)
        pool.release(worker)
    except BaseException:
        pool.discard(worker)
        raise


def test_forked_processes_have_groups_of_their_own_under_one_zygote(pool: WorkerPool) -> None:
    first, second = pool.acquire(), pool.acquire()
    try:
        zygote = zygote_of(first)
        assert zygote_of(second) == zygote and processes()[zygote].ppid == os.getpid()
        for worker in (first, second):
            assert os.getpgid(worker.pid) == worker.pid  # killpg(pid) reaches what it starts
            assert answers(worker)
            assert below_the_service(worker.pid)
        assert os.getpgid(zygote) not in {os.getpgid(0), first.pid, second.pid}
    finally:
        pool.discard(first)
        pool.discard(second)
    assert gone(first.pid) and gone(second.pid)
    assert first.proc.returncode == -signal.SIGKILL  # as the zygote reaped it


def test_a_zygote_killed_between_downloads_costs_nothing(pool: WorkerPool) -> None:
    warm = pool.acquire()
    zygote = zygote_of(warm)
    pool.release(warm)
    os.kill(zygote, signal.SIGKILL)
    wait_for(lambda: gone(zygote), message="the zygote to die")
    again = pool.acquire()  # the warm process outlives its zygote
    other = pool.acquire()  # forked from a new zygote
    try:
        assert again is warm and answers(again)
        assert zygote_of(other) not in {zygote, os.getpid()} and answers(other)
    finally:
        pool.release(again)
        pool.release(other)


def test_a_zygote_killed_during_a_download_lets_it_finish(
        pool: WorkerPool, tmp_path: Path, origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    size = origin.path_for(origin.slow_url).stat().st_size
    # At the origin's rate, which follows the test: slow until the kill, fast after.
    monkeypatch.setattr(origin, "slow_rate", size // 3)
    worker = pool.acquire()
    zygote = zygote_of(worker)
    downloading = threading.Event()
    results: list[dict[str, Any]] = []

    def progress(message: dict[str, Any]) -> None:
        if message.get("type") == "moving":  # it asks, as the engine's answer it waits for
            worker.answer({"op": "move"})
        if message.get("status") == "downloading":
            downloading.set()

    runner = threading.Thread(target=lambda: results.append(worker.run(
        download_job(tmp_path, origin.slow_url), progress, timeout=120)))
    runner.start()
    try:
        assert downloading.wait(timeout=60), "the download did not start"
        os.kill(zygote, signal.SIGKILL)
        origin.slow_rate = 16 * 1024 * 1024
        runner.join(timeout=120)
        [result] = results
        assert result["type"] == "result", result
        assert Path(result["filepath"]).read_bytes() == origin.path_for(
            origin.slow_url).read_bytes()
    finally:
        runner.join(timeout=120)
        pool.release(worker)
    fresh = pool.acquire()
    try:
        assert answers(fresh) and zygote_of(fresh) != zygote
    finally:
        pool.release(fresh)


@contextlib.contextmanager
def zygote_stopped(pool: WorkerPool, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The pool's zygote hung (SIGSTOP) while the block runs; its pid."""
    monkeypatch.setattr(launcher, "FORK_TIMEOUT", 1.0)
    warm = pool.acquire()
    zygote = zygote_of(warm)
    pool.discard(warm)
    os.kill(zygote, signal.SIGSTOP)
    try:
        yield zygote
    finally:
        with contextlib.suppress(ProcessLookupError):  # the pool killed it (it should have)
            os.kill(zygote, signal.SIGCONT)


def test_a_hung_zygote_is_killed_and_a_new_one_forks(
        pool: WorkerPool, monkeypatch: pytest.MonkeyPatch) -> None:
    with zygote_stopped(pool, monkeypatch) as zygote:
        forked = pool.acquire()
    try:
        assert zygote_of(forked) not in {zygote, os.getpid()} and answers(forked)
        wait_for(lambda: gone(zygote), message="the hung zygote to be killed")
    finally:
        pool.release(forked)


def test_the_services_own_lack_of_descriptors_costs_it_no_zygote(pool: WorkerPool) -> None:
    """No descriptor left for a new process's pipes (EMFILE): the start fails saying so and
    what to do, and the zygote, at no fault, forks the next one (it was killed for it, and
    the next start was a cold one)."""
    held = pool.acquire()
    zygote = zygote_of(held)
    try:
        # 64 above what this process holds, all taken
        with descriptors_taken(max(map(int, os.listdir("/proc/self/fd"))) + 64), \
                pytest.raises(WorkerDied) as refused:
            pool.acquire()
        assert str(refused.value) == ("no download process could be started: Too many open "
                                      "files: the service's limit of open files is reached")
        again = pool.acquire()
        assert zygote_of(again) == zygote and answers(again)
        pool.release(again)
    finally:
        pool.release(held)


def test_a_zygote_made_by_a_background_thread_stands_one_step_below(pool: WorkerPool) -> None:
    """The first download of a round may come from a task's thread, already below the
    service: its processes stand one step below the service too, not two."""
    made: list[Worker] = []

    def from_background() -> None:
        cpu_share.lower_this_thread()
        made.append(pool.acquire())

    maker = threading.Thread(target=from_background)
    maker.start()
    maker.join(timeout=120)
    [worker] = made
    try:
        assert answers(worker)
        assert below_the_service(worker.pid) and below_the_service(zygote_of(worker))
    finally:
        pool.release(worker)


def test_without_a_zygote_the_download_process_is_spawned(
        pool: WorkerPool, monkeypatch: pytest.MonkeyPatch) -> None:
    def cannot_start(self: launcher.Zygote, generation: int) -> None:
        raise launcher.ZygoteFailed("no zygote today")

    with zygote_stopped(pool, monkeypatch) as zygote:
        monkeypatch.setattr(launcher.Zygote, "__init__", cannot_start)
        spawned = pool.acquire()
    try:
        assert processes()[spawned.pid].ppid == os.getpid() and answers(spawned)
        assert below_the_service(spawned.pid)
        wait_for(lambda: gone(zygote), message="the hung zygote to be killed")
    finally:
        pool.discard(spawned)


SERVICE = """
import sys
from appliance.engine.workers import WorkerPool
pool = WorkerPool(spare=1, idle_timeout=60, capacity=2, linger=60)
busy, used = pool.acquire(), pool.acquire()
pool.release(used)  # kept idle: the used one
print(busy.pid, used.pid, flush=True)
sys.stdin.read()
"""


def test_forked_processes_and_their_zygote_die_with_the_service() -> None:
    service = subprocess.Popen([sys.executable, "-c", SERVICE], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
    try:
        assert service.stdout is not None
        busy, spare = (int(pid) for pid in service.stdout.readline().split())
        zygote = processes()[busy].ppid
        assert processes()[spare].ppid == zygote  # the idle one, under the same zygote
        assert processes()[zygote].ppid == service.pid
    finally:
        service.kill()
        service.wait(timeout=30)
    wait_for(lambda: all(gone(p) for p in (busy, spare, zygote)), timeout=30,
             message="the zygote and its processes to follow the killed service")


def zygotes() -> list[int]:
    """The zygotes this test process started."""
    return [p.pid for p in processes().values() if p.ppid == os.getpid() and p.state != "Z"
            and p.comm.startswith("python")]


def test_the_zygote_made_at_start_waits_for_the_first_download() -> None:
    """Made ahead of need, it follows the idle timeout, not the linger (0 here): the first
    download forks from it."""
    pool = WorkerPool(spare=1, idle_timeout=60, capacity=4, linger=0)
    try:
        [zygote] = wait_for(zygotes, timeout=60, message="the zygote made at start")
        wait_for(lambda: pool.stats()["starting"] == 0, message="the zygote to be ready")
        first = pool.acquire()
        assert zygote_of(first) == zygote and answers(first)
        pool.release(first)
    finally:
        pool.close()


def test_after_the_linger_the_zygote_goes_with_the_used_process() -> None:
    """Released processes beyond one used retire at once (a fork replaces them in
    milliseconds); that one and the zygote once the pool has been idle for the linger; a later
    download forks from a new zygote."""
    pool = WorkerPool(spare=1, idle_timeout=60, capacity=4, linger=1)
    try:
        workers = [pool.acquire() for _ in range(3)]
        zygote = zygote_of(workers[0])
        for worker in workers:
            pool.release(worker)
        assert sum(gone(w.pid) for w in workers) == 2, "more than one used process was kept"
        wait_for(lambda: pool.stats()["idle"] == 0 and all(gone(w.pid) for w in workers)
                 and gone(zygote), timeout=30, message="the used process and the zygote to go")
        assert not zygotes(), "a process stayed"
        again = pool.acquire()  # a new zygote, on demand
        assert zygote_of(again) != zygote and answers(again)
        pool.release(again)
    finally:
        pool.close()


def test_a_pool_closed_while_its_zygote_starts_does_not_wait_for_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The service stops at once although the zygote made at start has not imported yt-dlp
    yet (here: it never will, and would be waited for an hour); that zygote is killed."""
    monkeypatch.setattr(launcher, "CHILD", [sys.executable, "-c", "import time; time.sleep(3600)"])
    monkeypatch.setattr(launcher, "READY_TIMEOUT", 3600.0)
    pool = WorkerPool(spare=1, idle_timeout=60, capacity=4, linger=60)
    closer = threading.Thread(target=pool.close, daemon=True)
    try:
        [zygote] = wait_for(zygotes, message="the zygote made at start")
        assert pool.stats()["starting"] == 1  # not ready: it waits for the zygote's word
        closer.start()
        wait_for(lambda: not closer.is_alive(), message="the pool to close")
        wait_for(lambda: gone(zygote), message="the starting zygote to be killed")
    finally:
        for pid in zygotes():  # a close that failed to kill it is waiting for it
            os.kill(pid, signal.SIGKILL)
        if closer.ident is None:
            pool.close()
        closer.join(timeout=30)


@contextlib.contextmanager
def killed_while_its_zygote_is_stopped(pool: WorkerPool) -> Iterator[tuple[Worker, int]]:
    """A forked download process killed by SIGKILL (as the out-of-memory killer kills) while
    its zygote cannot run (a box that thrashes): the zygote reports its end once it runs
    again. Yields the process and its zygote's pid."""
    worker = pool.acquire()
    zygote = zygote_of(worker)
    os.kill(zygote, signal.SIGSTOP)
    try:
        os.kill(worker.pid, signal.SIGKILL)
        yield worker, zygote
    finally:
        os.kill(zygote, signal.SIGCONT)
        pool.discard(worker)


def test_an_exit_code_told_late_is_still_the_one_said(pool: WorkerPool) -> None:
    said: list[str] = []
    with killed_while_its_zygote_is_stopped(pool) as (worker, zygote):
        wait_for(lambda: worker.proc.ended(), message="the killed process to end")  # type: ignore[union-attr]
        # ended, its code not told yet: not alive (a spare so would be handed to a download)
        assert not worker.alive() and worker.proc.returncode is None
        asking = threading.Thread(target=lambda: said.append(worker.exit_reason()))
        asking.start()
        # The zygote answers 3 s late (once it runs again): later than the 2 s it was given.
        threading.Event().wait(3.0)
        os.kill(zygote, signal.SIGCONT)
        asking.join(timeout=60)
    assert said == ["the download process was killed by SIGKILL (out of memory?)"]
    assert worker.proc.returncode == -signal.SIGKILL


def test_an_exit_code_given_up_on_is_not_kept(pool: WorkerPool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "EXIT_CODE_LIMIT", 0.5)
    with killed_while_its_zygote_is_stopped(pool) as (worker, zygote):
        # unknown, and said so (not a signal it cannot know)
        assert worker.exit_reason() == (
            "the download process ended without an answer (exit code 0)")
        zygote_link = worker.proc._zygote  # type: ignore[union-attr]
    # The zygote runs again and reports the end; the next fork's answer comes after it.
    fresh = pool.acquire()
    try:
        assert zygote_of(fresh) == zygote and answers(fresh)
        assert zygote_link._codes == {}  # nobody will ask for it: not kept
        assert zygote_link._unwanted == set()
    finally:
        pool.release(fresh)


def test_a_zygote_its_reader_reaped_is_not_signalled_by_its_old_number(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A zygote that died is replaced after a failed fork with a kill of it: once reaped, its
    number may be another process's (on a Pi, pid_max is 32,768), so nothing is sent."""
    zygote = launcher.Zygote(0)
    zygote.wait_ready()
    os.kill(zygote.proc.pid, signal.SIGKILL)
    wait_for(lambda: zygote.gone and zygote.proc.returncode is not None,
             message="the zygote reaped by its reader")
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    zygote.kill()
    zygote.close()
    assert sent == []
