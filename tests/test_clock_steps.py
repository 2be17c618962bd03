"""A box without a battery clock (a Raspberry Pi) starts with the time it shut down at and is
set from the network minutes later: a download finished before that step was dated days too
early, and a task's retention by age deleted it at its next run. The clock's steps are told
from the boot clock; what finished since the start is dated again. Real downloads from the
local origin and the real runtime in process; the step itself is made by clocks given to
``ClockSteps`` (the test cannot step the machine's)."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import falcon.testing
import pytest
from support.aged_tasks import aged_task
from support.origin import MediaOrigin
from support.server import wait_for
from support.task_runs import run_now

from appliance.clock_steps import STEP, ClockSteps, Step
from appliance.runtime import Runtime
from appliance.tasks.scheduler import TaskScheduler

Client = falcon.testing.TestClient
DAY = 86400.0


class Clocks:
    """A wall clock and a boot clock that tests move."""

    def __init__(self, wall: float, boot: float = 1000.0) -> None:
        self.wall, self.boot = wall, boot

    def steps(self) -> ClockSteps:
        return ClockSteps(wall=lambda: self.wall, boot=lambda: self.boot)

    def run(self, seconds: float) -> None:
        self.wall += seconds
        self.boot += seconds


def test_slewing_and_late_looks_are_no_step() -> None:
    """NTP's slewing moves the wall clock against the boot clock by up to half a millisecond
    a second: a week of looks a minute apart adds up to minutes, none of them a step."""
    clocks = Clocks(1_700_000_000.0)
    steps = clocks.steps()
    for _ in range(7 * 24 * 60):
        clocks.run(60)
        clocks.wall += 0.03
        assert steps.step() is None
    clocks.run(600)  # a look ten minutes late (a suspended box: the boot clock counts it)
    clocks.wall += STEP - 1
    assert steps.step() is None


def test_a_forward_step_says_which_stamps_were_early_and_moves_the_start(
        caplog: pytest.LogCaptureFixture) -> None:
    clocks = Clocks(1_700_000_000.0)
    steps = clocks.steps()
    clocks.run(120)
    clocks.wall += 3 * DAY  # set from the network
    with caplog.at_level(logging.WARNING, "appliance.clock_steps"):
        step = steps.step()
    assert step == Step(1_700_000_000.0, 1_700_000_120.0, 3 * DAY)
    assert steps.started_at == 1_700_000_000.0 + 3 * DAY
    assert "the clock stepped forward 259200 s" in caplog.text
    assert steps.step() is None  # said once
    clocks.run(60)
    clocks.wall += 3600  # a second step: what the first one dated is dated again too
    assert steps.step() == Step(1_700_000_000.0 + 3 * DAY, clocks.wall - 3600, 3600)


def test_a_step_back_is_said_and_dates_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A time too late keeps a file longer; moved back, it could be deleted early."""
    clocks = Clocks(1_800_000_000.0)
    steps = clocks.steps()
    clocks.run(60)
    clocks.wall -= DAY
    with caplog.at_level(logging.WARNING, "appliance.clock_steps"):
        assert steps.step() is None
    assert "the clock went back 86400 s" in caplog.text
    assert steps.started_at == 1_800_000_000.0
    clocks.run(60)
    assert steps.step() is None  # the new offset is the reference now


def test_a_download_finished_before_the_clock_was_set_is_not_retentions_to_delete(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The service started three days "ago" by a clock three days slow; a download finished
    30 s before the clock was set. Without the new date, retention (2 days) deleted it at
    once; the one finished before the service started keeps its date."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true")
    task, (old, recent) = aged_task(runtime, client, origin, "unset-clock")
    now = time.time()
    early = dataclasses.replace(old, finished_at=now - 3 * DAY - 30)
    runtime.engine.store.save(early)
    clocks = Clocks(now - 3 * DAY - 120)
    runtime.tasks.clock = clocks.steps()
    clocks.run(120)
    clocks.wall += 3 * DAY
    run = run_now(runtime, task)
    assert run["status"] == "success", run
    kept = {i.id: i for i in runtime.tasks.items(task["id"], 0, 10)[0]}
    assert set(kept) == {old.id, recent.id}
    assert kept[old.id].finished_at == pytest.approx(now - 30)
    assert kept[recent.id].finished_at == pytest.approx(recent.finished_at)
    assert (Path(old.download_folder) / old.filename).is_file()


def test_the_task_loop_looks_at_the_clock_before_it_starts_due_runs() -> None:
    """A step forward is what makes runs due at once (their slots passed): their retention
    must find the times already moved."""
    seen: list[str] = []
    task = {"id": 1, "name": "t", "timer": "0 * * * *", "enabled": True,
            "created_at": 1_700_000_000.0, "last_run_at": None}
    now = [1_700_000_000.0]
    scheduler = TaskScheduler(lambda: [task], lambda ids: [task],
                              lambda t, trigger: seen.append("run"),
                              zone=lambda: ZoneInfo("UTC"), spread=lambda: 0.0,
                              concurrency=1, clock=lambda: now[0],
                              follow_clock=lambda: seen.append("clock"))
    try:
        scheduler.changed(task, 1)
        now[0] += 3 * DAY
        assert scheduler.tick() == [1]
        wait_for(lambda: "run" in seen, timeout=10, message="the run")
        assert seen == ["clock", "run"]
    finally:
        scheduler.stop()


def test_a_step_the_database_refused_is_found_again_at_the_next_look() -> None:
    clocks = Clocks(1_700_000_000.0)
    steps = clocks.steps()
    clocks.run(30)
    clocks.wall += DAY
    step = steps.step()
    assert step is not None
    steps.again(step)
    clocks.run(30)
    assert steps.step() == Step(1_700_000_000.0, clocks.wall - DAY, DAY)
