"""When tasks run: one thread that sleeps until the next cron slot (no busy loop), hands each
due run to a small pool, and runs the service's periodic jobs (the ``schedule`` package).

- A slot missed while the service was down runs once at start-up, not once per missed slot;
  so does a run a crash interrupted.
- Runs due at once (the same minute, or at start-up) start after a random delay of up to
  ``tasks_spread`` seconds, and at most ``tasks_concurrency`` run at a time.
- A task never runs twice at once: a slot that comes while it still runs, or still waits
  for a place in the pool, is skipped.
- A run gets the task as the step that started it read it (not read again: 500 reads in a
  round were GIL time the API needed), unless the task changed since, then it is read again.
- The clock is injectable; ``tick()`` is one step of the loop, for tests.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import tzinfo
from typing import Any

import schedule

from .. import cpu_share
from ..errors import AppError
from ..store.database import StorageFailure
from .cron import next_run

log = logging.getLogger(__name__)

# The longest sleep: a clock set back is noticed within this.
MAX_SLEEP = 60.0
# The shortest: runs due within it start together, one step of the loop (a read of their
# tasks, a scan of the plan) rather than one step each -- 500 runs spread over 10 s were
# 500 steps. Their start times are random within the spread anyway.
MIN_SLEEP = 0.25


class TaskScheduler:
    def __init__(
        self,
        tasks: Callable[[], list[dict[str, Any]]],
        some: Callable[[list[int]], list[dict[str, Any]]],
        run: Callable[[dict[str, Any], str], Any],
        *,
        zone: Callable[[], tzinfo],
        spread: Callable[[], float],
        concurrency: int,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        follow_clock: Callable[[], None] = lambda: None,
    ) -> None:
        self._tasks = tasks
        self._some = some
        self._run = run
        self._zone = zone
        self._spread = spread
        self._clock = clock
        self._rng = rng
        self._follow_clock = follow_clock
        self._lock = threading.Lock()
        # task id -> (the cron slot, when its run starts: the slot plus a random delay, and
        # what starts it: "timer", or "startup" for a run made up at start)
        self._next: dict[int, tuple[float, float, str]] = {}
        # task id -> how often it changed: a run whose task changed after it was read reads
        # it again
        self._changes: dict[int, int] = {}
        # Tasks whose run is in the pool, waiting for a place or running: a slot that comes
        # meanwhile is skipped. Queued again instead, a round that took longer than its
        # timers' interval (feeds at their time limit while the internet was down) piled
        # up without end and ran each task again and again once it came back.
        self._pending: set[int] = set()
        self._wake = threading.Event()
        # When the loop wakes next by itself (the clock's time): a change planned later
        # than that needs no wake.
        self._wakes_at = 0.0
        # The clock at the last step: one that went back since plans every timer again.
        self._last_step = 0.0
        self._planned_in: tzinfo | None = None  # the zone of the plans
        self._stop = threading.Event()
        self._storage_failing = False  # (said once while it lasts: see step)
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="task",
                                        initializer=cpu_share.lower_this_thread)
        self.jobs = schedule.Scheduler()

    # --- life cycle -------------------------------------------------------------------

    def start(self, interrupted: set[int]) -> None:
        """Plan every task; run once now those whose slot passed while the service was down
        and those a crash interrupted (``interrupted``: their ids)."""
        now = self._last_step = self._clock()
        self._planned_in = self._zone()
        for task in self._tasks():
            if not task["enabled"]:
                continue
            reference = task.get("last_run_at") or task["created_at"]
            slot = next_run(task["timer"], reference, self._zone())
            missed = slot is not None and slot <= now
            if missed or task["id"] in interrupted or task.get("mark_pending"):
                log.info("task %s (%s): %s; it runs now", task["id"], task["name"],
                         "a run was missed" if missed else "interrupted by a stop"
                         if task["id"] in interrupted else "its mark is still to be made")
                with self._lock:
                    self._next[task["id"]] = (now, now + self._delay(), "startup")
            else:
                self._plan(task, now)
        self._thread = threading.Thread(target=self._loop, name="task-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        # Runs in flight are not waited for: one cut short by the stop is recorded as
        # interrupted and runs again at the next start.
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- plans ------------------------------------------------------------------------

    def _plan(self, task: dict[str, Any], now: float) -> None:
        slot = next_run(task["timer"], now, self._zone()) if task["enabled"] else None
        with self._lock:
            if slot is None:
                self._next.pop(task["id"], None)
            else:
                self._next[task["id"]] = (slot, slot + self._delay(), "timer")

    def _delay(self) -> float:
        return self._rng() * self._spread()

    def changed(self, task: dict[str, Any] | None, task_id: int) -> None:
        """A task was created, changed (``task``) or deleted (``task`` None)."""
        with self._lock:
            self._changes[task_id] = self._changes.get(task_id, 0) + 1
        if task is None:
            with self._lock:
                self._next.pop(task_id, None)
            return  # a run less never makes the loop wake sooner
        self._plan(task, self._clock())
        with self._lock:
            planned = self._next.get(task_id)
            sooner = planned is not None and planned[1] < self._wakes_at
        # Each run's end changes its task (its last run): 500 runs in a round woke the loop
        # 500 times to find nothing due.
        if sooner:
            self._wake.set()

    def run_soon(self, task: dict[str, Any], trigger: str) -> None:
        """A run of ``task`` now, in the pool (skipped when one is waiting or running)."""
        if task["enabled"]:
            self._submit(task, trigger)

    def next_run_at(self, task_id: int) -> float | None:
        with self._lock:
            planned = self._next.get(task_id)
        return planned[0] if planned else None

    # --- the loop ---------------------------------------------------------------------

    def _replan(self, now: float) -> None:
        """Every run planned again from ``now``. The clock went back (a clock that ran
        ahead set right, by hand or by NTP): plans made on the later time waited for it,
        and a box whose clock had run a year ahead ran no task for a year. A run made up at
        start keeps what was left of its delay."""
        back = self._last_step - now
        with self._lock:
            timed = set()
            for task_id, (slot, start, trigger) in list(self._next.items()):
                if trigger == "timer":
                    timed.add(task_id)
                else:
                    self._next[task_id] = (slot - back, start - back, trigger)
        log.warning("the clock went back %.0f s: task runs planned again", back)
        self._plan_again(timed, now)
        for job in self.jobs.get_jobs():  # planned on the later time too: the hourly prune
            job._schedule_next_run()  # of old executions ran no more (schedule has no public way)

    def _plan_again(self, task_ids: set[int], now: float) -> None:
        for task in self._tasks():
            if task["id"] in task_ids:
                self._plan(task, now)

    def _follow_zone(self, now: float) -> None:
        """The timers planned again in a zone that changed (the system's, set while the
        service runs): "0 8 * * *" ran at 08:00 of the old zone until its run came."""
        zone = self._zone()
        if zone is self._planned_in:
            return
        if self._planned_in is None:  # the first plans
            self._planned_in = zone
            return
        log.warning("the time zone is now %s (was %s): task timers planned again", zone,
                    self._planned_in)
        self._planned_in = zone
        with self._lock:
            timed = {task_id for task_id, (_, start, trigger) in self._next.items()
                     if trigger == "timer" and start > now}  # a due run starts as it was
        self._plan_again(timed, now)

    def tick(self) -> list[int]:
        """Start the runs that are due; returns their task ids."""
        # First: a forward step of the clock is what makes runs due (missed slots), and
        # their retention must see the times it corrects.
        self._follow_clock()
        now = self._clock()
        if now < self._last_step - MAX_SLEEP:  # not a second's step back: a clock set right
            self._replan(now)
        self._last_step = now
        self._follow_zone(now)
        with self._lock:
            due = [(task_id, trigger) for task_id, (_, start, trigger) in self._next.items()
                   if start <= now]
        if due:
            # Only the due tasks are read: with hundreds due within the spread, the loop
            # ticks once per start, and reading every task each time cost the worker more
            # GIL time than all the runs together (bench/tasks_scale.py).
            by_id = {t["id"]: t for t in self._some([task_id for task_id, _ in due])}
            for task_id, trigger in due:
                task = by_id.get(task_id)
                if task is None:
                    self.changed(None, task_id)
                    continue
                self._submit(task, trigger)
                self._plan(task, now)
        self.jobs.run_pending()
        return [task_id for task_id, _ in due]

    def _sleep_seconds(self) -> float:
        """How long the loop sleeps now; it notes when it will wake."""
        now = self._clock()
        with self._lock:
            wait = min([MAX_SLEEP, *(start - now for _, start, _ in self._next.values())])
            idle = self.jobs.idle_seconds
            if idle is not None:
                wait = min(wait, idle)
            wait = max(MIN_SLEEP, wait)
            self._wakes_at = now + wait
        return wait

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._wake.wait(self._sleep_seconds())
            self._wake.clear()

    def step(self) -> None:
        """One turn of the loop: ``tick``, its failure logged. A database that cannot be
        read is said once while it lasts, in words: a due task it could not read stays due,
        and the loop, which turns every MIN_SLEEP then, logged a traceback four times a
        second until the file was put back."""
        try:
            self.tick()
        except StorageFailure as exc:
            if not self._storage_failing:
                log.warning("task timers wait until the database can be read again: %s",
                            exc.message)
            self._storage_failing = True
            return
        except Exception:
            log.exception("task scheduler step failed")
            return
        if self._storage_failing:
            log.info("task timers run again: the database can be read")
        self._storage_failing = False

    def _submit(self, task: dict[str, Any], trigger: str) -> None:
        task_id = task["id"]
        with self._lock:
            if task_id in self._pending:
                log.info("task %s: %s run skipped: its last run has not ended", task_id,
                         trigger)
                return
            self._pending.add(task_id)
            version = self._changes.get(task_id, 0)
        try:
            self._pool.submit(self._run_guarded, task, version, trigger)
        except RuntimeError:  # the pool is shut down: we are stopping
            with self._lock:
                self._pending.discard(task_id)

    def _run_guarded(self, task: dict[str, Any], version: int, trigger: str) -> None:
        task_id = task["id"]
        try:
            if not self._stop.is_set():
                self._run_checked(task, version, trigger)
        finally:
            with self._lock:
                self._pending.discard(task_id)

    def _run_checked(self, task: dict[str, Any], version: int, trigger: str) -> None:
        task_id = task["id"]
        with self._lock:
            changed = self._changes.get(task_id, 0) != version
        try:
            if changed:
                fresh = self._some([task_id])
                if not fresh or not fresh[0]["enabled"]:
                    log.info("task %s: %s run skipped: deleted or disabled", task_id, trigger)
                    return
                task = fresh[0]
            self._run(task, trigger)
        except AppError as exc:  # already running, or deleted meanwhile: skipped
            log.info("task %s: %s run skipped: %s", task_id, trigger, exc.message)
        except Exception:
            log.exception("task %s: run failed", task_id)
