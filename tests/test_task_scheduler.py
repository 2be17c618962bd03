"""Cron timers and the task scheduler on an injected clock (no test waits for a minute)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import falcon.testing
import pytest
from support.server import wait_for

from appliance.errors import AppError
from appliance.runtime import Runtime
from appliance.tasks import cron
from appliance.tasks.cron import check_timer, next_run, staggered, time_zone
from appliance.tasks.scheduler import MAX_SLEEP, MIN_SLEEP, TaskScheduler

# --- cron ---------------------------------------------------------------------------------


def test_staggering_carries_into_hours() -> None:
    assert staggered("5 */2 * * *", 1) == "10 */2 * * *"
    assert staggered("55 3 * * *", 1) == "0 4 * * *"
    assert staggered("55 23 * * *", 2) == "5 0 * * *"
    assert staggered("58 * * * *", 1) == "3 * * * *"
    assert staggered("*/15 * * * *", 3) == "*/15 * * * *"  # not one minute: left alone
    assert staggered("55 1,13 * * *", 1) == "0 1,13 * * *"  # hours no step names: as they are
    assert staggered("55 */2 * * *", 1) == "0 1-23/2 * * *"
    for index in range(30):  # every staggered timer is itself valid
        check_timer(staggered("50 */3 * * *", index))


def test_next_run_in_the_configured_zone_across_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    before = datetime(2026, 3, 28, 12, 0, tzinfo=berlin).timestamp()
    first = next_run("30 2 * * *", before, berlin)
    assert first is not None
    # 02:30 does not exist on 29 March in Berlin: cron runs at 03:00 that day.
    assert datetime.fromtimestamp(first, berlin).strftime("%d %H:%M") == "29 03:00"
    assert next_run("", before, berlin) is None
    assert next_run("0 0 30 2 *", before, berlin) is None  # 30 February never comes


# --- the scheduler on an injected clock ---------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _scheduler(tasks: list[dict[str, Any]], runs: list[tuple[int, str]], clock: Clock,
               spread: float = 0.0, rng: Callable[[], float] = lambda: 0.5,
               run: Callable[[dict[str, Any], str], Any] | None = None) -> TaskScheduler:
    return TaskScheduler(lambda: tasks, lambda ids: [t for t in tasks if t["id"] in ids],
                         run or (lambda task, trigger: runs.append((task["id"], trigger))),
                         zone=lambda: ZoneInfo("UTC"), spread=lambda: spread,
                         concurrency=2, clock=clock, rng=rng)


def _wait_runs(runs: list[Any], count: int) -> None:
    deadline = time.monotonic() + 10
    while len(runs) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def _task(task_id: int, timer: str, created: float, last: float | None = None) -> dict:
    return {"id": task_id, "name": f"t{task_id}", "timer": timer, "enabled": True,
            "created_at": created, "last_run_at": last}


T0 = datetime(2026, 1, 1, 12, 0, 30, tzinfo=ZoneInfo("UTC")).timestamp()


def test_missed_slots_run_once_at_start_and_interrupted_runs_again() -> None:
    """And a task whose mark is still to be made runs at once: its mark made at a slot
    hours away would take what came out meanwhile for the back catalogue."""
    clock, runs = Clock(T0), []
    tasks = [_task(1, "*/5 * * * *", T0 - 7200, T0 - 3600),  # 12 slots missed
             _task(2, "0 0 1 1 *", T0 - 60),  # next slot next year
             _task(3, "0 0 1 1 *", T0 - 60),  # interrupted by a crash
             {**_task(4, "0 0 1 1 *", T0 - 60), "mark_pending": True},
             {**_task(5, "0 0 1 1 *", T0 - 60), "mark_pending": True, "enabled": False}]
    scheduler = _scheduler(tasks, runs, clock)
    scheduler.start(interrupted={3})
    try:
        _wait_runs(runs, 3)
        assert sorted(runs) == [(1, "startup"), (3, "startup"), (4, "startup")]
        assert scheduler.next_run_at(1) == T0 + 270  # 12:05:00
    finally:
        scheduler.stop()


def test_due_runs_start_on_time_and_spread_within_the_bound() -> None:
    clock, runs = Clock(T0), []
    tasks = [_task(i, "1 12 * * *", T0) for i in (1, 2)]
    rngs = iter([0.0, 0.99])
    scheduler = _scheduler(tasks, runs, clock, spread=30, rng=lambda: next(rngs, 0.5))
    for task in tasks:
        scheduler.changed(task, task["id"])
    slot = T0 + 30  # 12:01:00
    assert scheduler.next_run_at(1) == slot
    clock.now = slot - 1
    assert scheduler.tick() == []
    clock.now = slot
    assert scheduler.tick() == [1]  # no delay drawn for the first
    clock.now = slot + 29.9
    assert scheduler.tick() == [2]  # the second within the 30 s bound
    _wait_runs(runs, 2)
    assert sorted(runs) == [(1, "timer"), (2, "timer")]
    assert scheduler.next_run_at(1) == slot + 86400  # tomorrow
    scheduler.stop()


def test_runs_due_a_moment_apart_start_in_one_step() -> None:
    """The loop never wakes sooner than MIN_SLEEP: 500 runs spread over 10 s take at most
    40 steps (each reads the due tasks and scans the plan), not 500."""
    clock, runs = Clock(T0), []
    tasks = [_task(i, "1 12 * * *", T0) for i in (1, 2, 3)]
    rngs = iter([0.0, 0.001, 0.002])
    scheduler = _scheduler(tasks, runs, clock, spread=30, rng=lambda: next(rngs, 0.5))
    for task in tasks:
        scheduler.changed(task, task["id"])
    slot = T0 + 30
    clock.now = slot - 0.01
    assert scheduler._sleep_seconds() == MIN_SLEEP
    clock.now += MIN_SLEEP
    assert sorted(scheduler.tick()) == [1, 2, 3]
    _wait_runs(runs, 3)
    scheduler.stop()


def test_a_change_wakes_the_loop_only_when_it_plans_a_run_sooner() -> None:
    """Each run's end changes its task (its last run): a round of 500 runs woke the loop 500
    times to find nothing due."""
    clock, runs = Clock(T0), []
    next_year, next_minute = _task(1, "0 0 1 1 *", T0), _task(2, "1 12 * * *", T0)
    scheduler = _scheduler([next_year, next_minute], runs, clock)
    scheduler.changed(next_year, 1)
    assert scheduler._sleep_seconds() == MAX_SLEEP  # the loop wakes at 12:01:30 by itself
    scheduler._wake.clear()
    scheduler.changed(next_year, 1)
    scheduler.changed(None, 1)
    assert not scheduler._wake.is_set()
    scheduler.changed(next_minute, 2)  # due at 12:01:00
    assert scheduler._wake.is_set()
    assert scheduler._sleep_seconds() == 30


def test_slow_run_skips_the_slot_that_comes_meanwhile() -> None:
    clock, runs = Clock(T0), []
    release = threading.Event()
    calls: list[int] = []
    busy = threading.Lock()

    def run(task: dict[str, Any], trigger: str) -> None:
        if not busy.acquire(blocking=False):
            raise AppError("The task is running.", "CONFLICT")
        calls.append(task["id"])
        try:
            release.wait(10)
        finally:
            busy.release()

    task = _task(1, "* * * * *", T0)
    scheduler = _scheduler([task], runs, clock, run=run)
    scheduler.changed(task, 1)
    clock.now = T0 + 30
    scheduler.tick()
    _wait_runs(calls, 1)
    clock.now = T0 + 90
    scheduler.tick()  # still running: this slot is skipped, not queued behind it
    release.set()
    scheduler.stop()
    assert calls == [1]


def test_a_slot_that_comes_while_its_run_waits_for_a_place_is_skipped() -> None:
    """A round that takes longer than its timers' interval (every feed at its time limit
    while the internet is down) queued every task again behind the runs still waiting: the
    pool's queue grew at each slot, and once the runs were quick again each task ran as
    many times in a row as slots had passed."""
    clock, runs = Clock(T0), []
    release = threading.Event()
    calls: list[int] = []
    ended: list[int] = []

    def run(task: dict[str, Any], trigger: str) -> None:
        calls.append(task["id"])
        release.wait(10)
        ended.append(task["id"])

    tasks = [_task(i, "* * * * *", T0) for i in (1, 2, 3)]
    scheduler = _scheduler(tasks, runs, clock, run=run)  # two runs at once
    for task in tasks:
        scheduler.changed(task, task["id"])
    try:
        clock.now = T0 + 30
        assert sorted(scheduler.tick()) == [1, 2, 3]
        wait_for(lambda: len(calls) == 2, 10, message="two runs, the third waiting")
        clock.now = T0 + 90  # the next slot: 1 and 2 still run, 3 still waits
        scheduler.tick()
        release.set()
        wait_for(lambda: len(ended) == len(calls) >= 3 and not scheduler._pending, 10,
                 message="every run ended")
        assert sorted(calls) == [1, 2, 3]
        clock.now = T0 + 150  # once their runs ended, their next slots run as ever
        scheduler.tick()
        wait_for(lambda: len(calls) == 6, 10, message="the next slot's runs")
    finally:
        scheduler.stop()
    scheduler._pool.shutdown(wait=True)
    assert sorted(calls) == [1, 1, 2, 2, 3, 3]


def test_a_run_gets_the_task_it_was_started_with_unless_it_changed_meanwhile() -> None:
    """The step that starts runs reads their tasks once; a task changed or deleted before its
    run leaves the pool's queue is read again (the change wins), not run as it was."""
    clock = Clock(T0)
    release = threading.Event()
    got: list[dict[str, Any]] = []

    def run(task: dict[str, Any], trigger: str) -> None:
        got.append(task)
        if task["id"] in (1, 2):  # both of the pool's threads busy: the rest wait
            release.wait(10)

    tasks = [_task(i, "1 12 * * *", T0) for i in (1, 2, 3, 4, 5)]
    asked: list[list[int]] = []

    def some(ids: list[int]) -> list[dict[str, Any]]:
        asked.append(sorted(ids))
        return [t for t in tasks if t["id"] in ids]

    scheduler = TaskScheduler(lambda: tasks, some, run, zone=lambda: ZoneInfo("UTC"),
                              spread=lambda: 0.0, concurrency=2, clock=clock,
                              rng=lambda: 0.5)
    try:
        for task in tasks:
            scheduler.changed(task, task["id"])
        clock.now = T0 + 30
        assert sorted(scheduler.tick()) == [1, 2, 3, 4, 5]
        _wait_runs(got, 2)
        tasks[2] = {**tasks[2], "url": "changed"}
        scheduler.changed(tasks[2], 3)
        del tasks[3]
        scheduler.changed(None, 4)
        release.set()
        _wait_runs(got, 4)
        by_id = {t["id"]: t for t in got}
        assert sorted(by_id) == [1, 2, 3, 5]  # 4 was deleted before its run
        assert by_id[3]["url"] == "changed" and "url" not in by_id[5]
        # read once by the step, and again only where changed since (1, 2 and 5 were
        # changed too, but before the step read them)
        assert asked[0] == [1, 2, 3, 4, 5] and sorted(asked[1:]) == [[3], [4]], asked
    finally:
        release.set()
        scheduler.stop()


def test_a_disabled_task_never_runs_at_start() -> None:
    """Not when its slot passed while the service was down, nor when a crash interrupted
    its last run: it is off, and stays unplanned."""
    clock, runs = Clock(T0), []
    off = {**_task(1, "*/5 * * * *", T0 - 7200, T0 - 3600), "enabled": False}
    on = _task(2, "0 0 1 1 *", T0 - 60)
    scheduler = _scheduler([off, on], runs, clock)
    scheduler.start(interrupted={1, 2})
    try:
        _wait_runs(runs, 1)
        assert runs == [(2, "startup")]
        assert scheduler.next_run_at(1) is None
    finally:
        scheduler.stop()
    assert runs == [(2, "startup")]


def test_a_task_gone_when_its_slot_comes_is_dropped_not_run() -> None:
    clock, runs = Clock(T0), []
    tasks = [_task(1, "1 12 * * *", T0), _task(2, "1 12 * * *", T0)]
    scheduler = _scheduler(tasks, runs, clock)
    for task in tasks:
        scheduler.changed(task, task["id"])
    del tasks[0]  # deleted without a word to the scheduler (e.g. by another process)
    clock.now = T0 + 30
    assert sorted(scheduler.tick()) == [1, 2]
    _wait_runs(runs, 1)
    scheduler.stop()
    assert runs == [(2, "timer")]
    assert scheduler.next_run_at(1) is None and scheduler.next_run_at(2) == T0 + 30 + 86400


def test_a_task_disabled_before_its_run_leaves_the_queue_is_not_run() -> None:
    clock, runs = Clock(T0), []
    releases = {1: threading.Event(), 2: threading.Event()}
    got: list[int] = []

    def run(task: dict[str, Any], trigger: str) -> None:
        got.append(task["id"])
        if task["id"] in releases:  # both of the pool's threads busy: 3 and 4 wait
            releases[task["id"]].wait(10)

    tasks = [_task(i, "1 12 * * *", T0) for i in (1, 2, 3, 4)]
    scheduler = _scheduler(tasks, runs, clock, run=run)
    try:
        for task in tasks:
            scheduler.changed(task, task["id"])
        clock.now = T0 + 30
        assert sorted(scheduler.tick()) == [1, 2, 3, 4]
        _wait_runs(got, 2)
        tasks[2] = {**tasks[2], "enabled": False}
        scheduler.changed(tasks[2], 3)
        assert scheduler.next_run_at(3) is None
        releases[1].set()  # one thread free: it takes 3, then 4, in that order
        _wait_runs(got, 3)
        assert sorted(got) == [1, 2, 4]
    finally:
        for release in releases.values():
            release.set()
        scheduler.stop()


def test_a_step_that_fails_does_not_stop_the_loop() -> None:
    """A read of the due tasks that fails (a locked database, say) is logged; the loop
    goes on, and the run starts at a later step."""
    clock, runs = Clock(T0), []
    task = _task(1, "0 0 1 1 *", T0 - 60)
    failures = iter([RuntimeError("database is locked")])

    def some(ids: list[int]) -> list[dict[str, Any]]:
        error = next(failures, None)
        if error is not None:
            raise error
        return [task] if 1 in ids else []

    scheduler = TaskScheduler(lambda: [task], some,
                              lambda t, trigger: runs.append((t["id"], trigger)),
                              zone=lambda: ZoneInfo("UTC"), spread=lambda: 0.0,
                              concurrency=1, clock=clock, rng=lambda: 0.5)
    scheduler.start(interrupted={1})
    try:
        _wait_runs(runs, 1)
        assert runs == [(1, "startup")]
    finally:
        scheduler.stop()


def test_cron_timers_are_checked_and_normalised() -> None:
    assert check_timer("  5   */2 * * * ") == "5 */2 * * *"
    assert check_timer("") == check_timer("   ") == ""
    t = datetime(2026, 1, 1, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    utc = ZoneInfo("UTC")
    # strictly after: a run at its slot's very second is not planned again for it
    assert next_run("0 * * * *", t, utc) == t + 3600
    assert next_run("0 * * * *", t - 0.5, utc) == t
    new_york = ZoneInfo("America/New_York")  # 12:00 UTC is 07:00 there
    assert next_run("0 8 * * *", t, new_york) == t + 3600
    assert staggered("50 */3 * * *", 2) == "0 1-23/3 * * *"
    assert staggered("0 */2 * * *", 24) == "0 */2 * * *"  # two hours on: the same slots
    assert staggered("5 1-5 * * *", 0) == "5 1-5 * * *"


def test_stop_does_not_wait_for_a_run_in_flight() -> None:
    """A run cut short is recorded as interrupted and runs again at the next start; the
    service's stop is not held up by a feed that takes its time."""
    clock, runs = Clock(T0), []
    release, finished = threading.Event(), threading.Event()

    def run(task: dict[str, Any], trigger: str) -> None:
        runs.append(task["id"])
        release.wait(10)
        finished.set()

    task = _task(1, "1 12 * * *", T0)
    scheduler = _scheduler([task], runs, clock, run=run)
    scheduler.changed(task, 1)
    clock.now = T0 + 30
    scheduler.tick()
    _wait_runs(runs, 1)
    try:
        scheduler.stop()
        assert not finished.is_set()
    finally:
        release.set()


def test_a_task_that_ran_at_its_last_slot_does_not_run_again_at_start() -> None:
    """Its last run is the reference, not its creation: an hourly task created hours ago that
    ran at noon waits for 13:00."""
    clock, runs = Clock(T0), []  # 12:00:30
    task = _task(1, "0 * * * *", T0 - 7200, T0 - 30)
    scheduler = _scheduler([task], runs, clock)
    scheduler.start(interrupted=set())
    try:
        assert scheduler.next_run_at(1) == T0 + 3570
        assert scheduler._sleep_seconds() == MAX_SLEEP  # nothing to start meanwhile
    finally:
        scheduler.stop()
    assert runs == []


def test_timers_follow_the_services_time_zone(
        app_with: Callable[..., tuple[Runtime, falcon.testing.TestClient]]) -> None:
    tokyo = ZoneInfo("Asia/Tokyo")  # nine hours from the test machines' UTC
    _, client = app_with(YTP_TASKS_TIMEZONE="Asia/Tokyo")
    task = client.simulate_post("/api/tasks", json={
        "name": "morning", "url": "http://127.0.0.1:9/feed.rss", "timer": "0 9 * * *"}).json
    planned = datetime.fromtimestamp(task["next_run_at"], tokyo)
    assert (planned.hour, planned.minute) == (9, 0)
    assert task["next_run_at"] - time.time() <= 86400


def test_the_loop_wakes_by_itself_when_a_run_is_due() -> None:
    """Nothing tells it: it slept until the start it had planned."""
    clock, runs = Clock(T0 + 29.9), []  # a tenth of a second before 12:01:00
    task = _task(1, "1 12 * * *", T0, T0 - 60)
    scheduler = _scheduler([task], runs, clock)
    scheduler.start(interrupted=set())
    try:
        deadline = time.monotonic() + 10
        while scheduler._wakes_at == 0 and time.monotonic() < deadline:  # asleep
            time.sleep(0.01)
        clock.now = T0 + 30
        _wait_runs(runs, 1)
        assert runs == [(1, "timer")]
    finally:
        scheduler.stop()


def test_a_clock_set_back_plans_the_timers_again() -> None:
    """A box whose clock ran a day ahead, set right by NTP: the plans made on the later
    time waited for it, and an hourly task ran no more for a day. A step back of seconds
    changes nothing; a run made up at start keeps its turn."""
    clock, runs = Clock(T0), []  # 12:00:30
    hourly, daily = _task(1, "0 * * * *", T0 - 7200, T0 - 30), _task(2, "0 3 * * *", T0)
    interrupted = _task(3, "0 * * * *", T0 - 7200, T0 - 30)
    # a spread of 60 s (half of it drawn): the made-up run waits 30 s past the start
    scheduler = _scheduler([hourly, daily, interrupted], runs, clock, spread=60)
    pruned: list[bool] = []
    prune = scheduler.jobs.every(1).hours.do(lambda: pruned.append(True))
    prune.next_run = datetime.now() + timedelta(days=1)  # planned on the later time too
    scheduler.start(interrupted={3})
    try:
        assert scheduler.next_run_at(1) == T0 + 3570  # 13:00
        clock.now = T0 - 30  # half a minute back: as planned
        scheduler.tick()
        assert scheduler.next_run_at(1) == T0 + 3570
        clock.now = T0 - 86400 + 600  # set right: yesterday 12:10:30
        scheduler.tick()
        assert scheduler.next_run_at(1) == T0 - 86400 + 3570  # yesterday 13:00
        assert scheduler.next_run_at(2) == T0 - 86400 + 15 * 3600 - 30  # today 03:00
        # its made-up run: the 60 s it had left when the clock last stepped (back 30 s)
        assert scheduler._next[3][1] == clock.now + 60
        assert prune.next_run <= datetime.now() + timedelta(hours=1)  # the hourly jobs too
        assert pruned == []
    finally:
        scheduler.stop()


def test_the_systems_zone_is_read_again_when_it_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``timedatectl set-timezone`` points /etc/localtime elsewhere; ``TZ`` says more."""
    zones = Path("/usr/share/zoneinfo")
    localtime = tmp_path / "localtime"
    localtime.symlink_to(zones / "Asia/Tokyo")
    monkeypatch.setattr(cron, "LOCALTIME", str(localtime))
    monkeypatch.delenv("TZ", raising=False)
    tokyo = time_zone("")
    assert str(tokyo) == "Asia/Tokyo" and time_zone("") is tokyo  # read once while it stays
    localtime.unlink()
    localtime.symlink_to(zones / "Europe/Berlin")
    assert str(time_zone("")) == "Europe/Berlin"
    monkeypatch.setenv("TZ", ":America/New_York")
    assert str(time_zone("")) == "America/New_York"
    monkeypatch.setenv("TZ", "No/Such_Zone")  # not a zone: /etc/localtime's
    assert str(time_zone("")) == "Europe/Berlin"
    monkeypatch.delenv("TZ")
    copied = tmp_path / "copied"  # a zone's file copied, not linked: named for the logs
    copied.write_bytes((zones / "Asia/Tokyo").read_bytes())
    monkeypatch.setattr(cron, "LOCALTIME", str(copied))
    assert str(time_zone("")) == "localtime"
    monkeypatch.setattr(cron, "LOCALTIME", str(tmp_path / "none"))
    assert time_zone("").utcoffset(datetime(2026, 1, 1)) is not None  # the clock's own
    assert time_zone("Asia/Tokyo") is time_zone("Asia/Tokyo")
    with pytest.raises(ValueError, match="unknown time zone 'No/Such_Zone'"):
        time_zone("No/Such_Zone")


def test_timers_are_planned_again_in_a_zone_that_changed() -> None:
    """The system's zone set while the service runs: "0 9 * * *" waited for 09:00 of the
    old zone until its run came."""
    clock, runs = Clock(T0), []  # 12:00:30 UTC
    zone = [ZoneInfo("UTC")]
    tasks = [_task(1, "0 9 * * *", T0 - 60)]
    scheduler = TaskScheduler(lambda: tasks, lambda ids: [t for t in tasks if t["id"] in ids],
                              lambda t, trigger: runs.append((t["id"], trigger)),
                              zone=lambda: zone[0], spread=lambda: 0.0, concurrency=1,
                              clock=clock)
    scheduler.start(interrupted=set())
    try:
        assert scheduler.next_run_at(1) == T0 + 21 * 3600 - 30  # tomorrow 09:00 UTC
        scheduler.tick()
        assert scheduler.next_run_at(1) == T0 + 21 * 3600 - 30
        zone[0] = ZoneInfo("Asia/Tokyo")  # 21:00:30 there
        scheduler.tick()
        assert scheduler.next_run_at(1) == T0 + 12 * 3600 - 30  # tomorrow 09:00 in Tokyo
        assert runs == []
    finally:
        scheduler.stop()


def test_a_slot_missed_in_the_services_zone_runs_at_start() -> None:
    """Missed or not is read in the configured zone: 20:00 in Tokyo is 11:00 UTC, passed at
    12:00:30 UTC, though 20:00 on the box's clock (UTC) is still to come."""
    clock, runs = Clock(T0), []  # 12:00:30 UTC, 21:00:30 in Tokyo
    task = _task(1, "0 20 * * *", T0 - 86400, T0 - 7200)  # last run 19:00:30 in Tokyo
    scheduler = TaskScheduler(lambda: [task], lambda ids: [task] if 1 in ids else [],
                              lambda t, trigger: runs.append((t["id"], trigger)),
                              zone=lambda: ZoneInfo("Asia/Tokyo"), spread=lambda: 0.0,
                              concurrency=1, clock=clock)
    scheduler.start(interrupted=set())
    try:
        _wait_runs(runs, 1)
        assert runs == [(1, "startup")]
    finally:
        scheduler.stop()
