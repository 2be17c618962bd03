"""The worker pool on real processes: its capacity follows the settings, a burst keeps its
processes until it ends, and a process that takes its time to retire holds nobody else up
(the pool's lock is never held across it); however its processes end, nothing of theirs is
left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading

import pytest
from support.procs import living_in_group, processes
from support.server import wait_for

from appliance.engine import launcher
from appliance.engine.workers import (
    MAX_JOBS_PER_PROCESS,
    State,
    Worker,
    WorkerDied,
    WorkerPool,
)


def test_capacity_is_read_when_a_worker_comes_back() -> None:
    capacity = [0]
    pool = WorkerPool(spare=0, idle_timeout=60, capacity=lambda: capacity[0], linger=60)
    try:
        first = pool.acquire()
        pool.release(first)  # room for none: retired
        assert pool.stats() == {"idle": 0, "busy": 0, "starting": 0}
        assert first.proc.poll() is not None
        capacity[0] = 1  # the settings changed: now one is kept
        second = pool.acquire()
        pool.release(second)
        assert pool.stats() == {"idle": 1, "busy": 0, "starting": 0}
        assert pool.pids() == [second.pid]
    finally:
        pool.close()


def test_a_burst_keeps_its_processes_until_it_ends() -> None:
    """While others still work, a released process is kept for the next job (not a fresh
    one forked for it); when the last comes back, the pool keeps one used, as when idle."""
    pool = WorkerPool(spare=0, idle_timeout=60, capacity=4, linger=60)
    try:
        first, second, third = pool.acquire(), pool.acquire(), pool.acquire()
        pool.release(first)
        pool.release(second)
        assert pool.stats() == {"idle": 2, "busy": 1, "starting": 0}
        again = pool.acquire()
        assert again.pid == second.pid  # a used one, not a new fork
        pool.release(again)
        pool.release(third)
        assert pool.stats() == {"idle": 1, "busy": 0, "starting": 0}
        kept = pool.pids()[0]
        others = [w for w in (first, second, third) if w.pid != kept]
        assert len(others) == 2
        wait_for(lambda: all(w.proc.poll() is not None for w in others),
                 timeout=10, message="the burst's other processes to retire")
    finally:
        pool.close()


def test_a_slow_retire_holds_up_no_one() -> None:
    """A process that does not answer its exit (stopped here) takes seconds to retire; the
    pool answers and hands out processes meanwhile."""
    pool = WorkerPool(spare=0, idle_timeout=60, capacity=0, linger=60)
    try:
        stuck = pool.acquire()
        os.kill(stuck.pid, signal.SIGSTOP)
        releasing = threading.Thread(target=pool.release, args=(stuck,))
        releasing.start()
        wait_for(lambda: pool.stats()["busy"] == 0, timeout=10,
                 message="the release to give the worker up")
        assert releasing.is_alive(), "the stopped process retired at once"
        answered = threading.Event()

        def use_the_pool() -> None:
            pool.stats()
            pool.release(pool.acquire())
            answered.set()

        threading.Thread(target=use_the_pool, daemon=True).start()
        assert answered.wait(timeout=60), "the pool waited for a retiring process"
        releasing.join(timeout=30)
        assert stuck.proc.poll() is not None  # killed in the end
    finally:
        pool.close()


def test_states_are_named() -> None:
    assert {s.value for s in State} == {"starting", "idle", "busy"}


def held_ends() -> list[str]:
    """What this process holds open of pipes, sockets and pidfds (the pool's kinds)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, gone
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(("pipe:", "socket:", "anon_inode:[pidfd]")):
                found.append(target)
    return sorted(found)


def test_every_way_a_process_ends_gives_back_what_it_held() -> None:
    """Killed mid-job, given back, retired by an update, the zygote's turn over: afterwards no
    process, descriptor or thread of the pool's is left."""
    # What earlier tests left may end meanwhile: only what appears here counts.
    before, threads = set(held_ends()), set(threading.enumerate())
    pool = WorkerPool(spare=1, idle_timeout=60, capacity=2, linger=60)
    started: list[int] = []
    for turn in range(6):
        worker = pool.acquire()
        started.append(worker.pid)
        if turn % 3 == 0:  # died mid-job (the OOM killer)
            os.kill(worker.pid, signal.SIGKILL)
            with pytest.raises(WorkerDied, match="SIGKILL"):
                worker.run({"op": "archive_ids", "job": "j", "urls": []}, lambda m: None,
                           timeout=30)
            pool.discard(worker)
        elif turn % 3 == 1:
            pool.release(worker)
        else:  # a new yt-dlp: idle and zygote retire, this one when it comes back
            pool.renew()
            pool.release(worker)
    pool.close()
    wait_for(lambda: not any(living_in_group(pid) for pid in started), timeout=30,
             message="every download process to be gone")
    wait_for(lambda: not set(held_ends()) - before and not set(threading.enumerate()) - threads,
             timeout=30, message="the pool's descriptors and threads to be given back")


def test_a_spawned_spare_made_after_an_update_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pidfds (Linux before 5.3) the pool spawns its spares: the one made after a new
    yt-dlp (``renew``) belongs to the new generation and is kept, not retired as stale."""
    monkeypatch.setattr(launcher, "_pidfds_work", lambda: False)
    pool = WorkerPool(spare=1, idle_timeout=60, capacity=2, linger=60)
    try:
        assert not pool._launcher.forks
        [old] = wait_for(lambda: pool.stats() == {"idle": 1, "busy": 0, "starting": 0}
                         and pool.pids(), timeout=60, message="the spare")
        pool.renew()
        [new] = wait_for(lambda: pool.stats() == {"idle": 1, "busy": 0, "starting": 0}
                         and pool.pids() != [old] and pool.pids(), timeout=60,
                         message="a spare of the new generation")
        worker = pool.acquire()
        assert worker.pid == new and worker.generation == 1
        pool.release(worker)
    finally:
        pool.close()


def test_a_process_running_through_a_second_update_is_not_used_again() -> None:
    """Two new yt-dlps in a row: a process started between them, busy through the second,
    is retired when its job ends, not kept for the next (it runs the older of the two)."""
    pool = WorkerPool(spare=0, idle_timeout=60, capacity=2, linger=60)
    try:
        pool.renew()
        between = pool.acquire()
        pool.renew()
        pool.release(between)
        assert pool.stats()["idle"] == 0
        wait_for(lambda: not living_in_group(between.pid), message="it to retire")
        after = pool.acquire()
        assert after.pid != between.pid
        pool.release(after)
    finally:
        pool.close()


def test_a_start_ahead_of_need_that_fails_is_said(monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """No zygote can be made ahead of need (the interpreter gone): the log says why; the
    pool waits for a download to try again."""
    monkeypatch.setattr(launcher, "CHILD", ["/nonexistent/python"])
    pool = WorkerPool(spare=1, idle_timeout=60, capacity=1, linger=60)
    try:
        wait_for(lambda: caplog.messages, message="the failed start to be said")
        assert caplog.messages[0] == ("could not start a download process ahead of need: "
                                      "[Errno 2] No such file or directory: "
                                      "'/nonexistent/python'")
    finally:
        pool.close()


def test_a_pool_never_closed_does_not_hold_its_process_open() -> None:
    """A program that made a pool, took a process and ends without closing it (a command
    that failed on its way) ends: the keeper's thread does not keep it alive, nor does the
    thread that reads its zygote."""
    ended = subprocess.run(
        [sys.executable, "-c", "from appliance.engine.workers import WorkerPool\n"
         "WorkerPool(spare=0, idle_timeout=60, capacity=1, linger=60).acquire()"],
        capture_output=True, text=True, timeout=60, check=False)
    assert ended.returncode == 0, ended.stderr


def test_the_close_ends_every_zygote_let_go_while_its_processes_run() -> None:
    """Zygotes let go (two updates) wait for their processes; the service's stop does not:
    each exits at once, its processes (killed by the engine's stop first) aside."""
    pool = WorkerPool(spare=0, idle_timeout=60, capacity=2, linger=60)
    running: list[Worker] = []
    try:
        for _ in range(2):
            running.append(pool.acquire())
            pool.renew()  # its zygote is let go; its process runs on
        zygotes = [processes()[w.pid].ppid for w in running]
        assert len(set(zygotes)) == 2 and os.getpid() not in zygotes
        pool.close()
        wait_for(lambda: not any(living_in_group(z) for z in zygotes), timeout=20,
                 message="the zygotes let go to exit at the close")
        assert all(w.alive() for w in running)  # the engine's stop is what ends these
    finally:
        pool.close()
        for worker in running:
            pool.discard(worker)


def test_a_process_serves_its_count_of_jobs_then_is_replaced() -> None:
    """A long-lived yt-dlp accumulates caches: after MAX_JOBS_PER_PROCESS jobs its process
    retires when given back, and the next job gets another."""
    pool = WorkerPool(spare=0, idle_timeout=60, capacity=1, linger=60)
    try:
        first = pool.acquire()
        for done in range(1, MAX_JOBS_PER_PROCESS + 1):
            worker = first if done == 1 else pool.acquire()
            assert worker is first, f"replaced after {done - 1} jobs"
            worker.run({"op": "archive_ids", "job": "j", "urls": []}, lambda m: None,
                       timeout=30)
            assert worker.jobs == done
            pool.release(worker)
        assert first.proc.poll() is not None  # retired when given back the last time
        other = pool.acquire()
        assert other is not first and other.jobs == 0
        pool.release(other)
    finally:
        pool.close()


def test_a_forked_process_known_to_have_ended_is_sent_no_kill(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its zygote reaped it (and killed what was left of its group): a kill of its number,
    which may be another's by now, is never sent, whoever asks for it later."""
    pool = WorkerPool(spare=0, idle_timeout=60, capacity=lambda: 0, linger=60)
    try:
        worker = pool.acquire()
        assert isinstance(worker.proc, launcher.ForkedProcess)
        pool.release(worker)  # room for none: retired (its exit asked, then reaped)
        assert worker.proc.returncode is not None
        sent: list[int] = []
        monkeypatch.setattr(os, "killpg", lambda pgid, sig: sent.append(pgid))
        worker.signal_kill()
        worker.kill()
        assert sent == []
    finally:
        pool.close()
