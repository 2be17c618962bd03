"""The queue's header over time: "failed today" counts today's failures, however long the
TUI stays open (a tmux session left for weeks) and whatever ended while it was away; the
total speed is sampled each second for its sparkline."""

from __future__ import annotations

import time

import pytest
from support.hostile import HostileService, hostile_service
from support.tui_pilot import connected, drive, until
from textual.pilot import Pilot
from textual.widgets import Sparkline

from appliance.client import ApiClient, Connection, LiveEvent
from appliance.tui.app import ApplianceApp
from appliance.tui.model import QueueModel

pytestmark = pytest.mark.xdist_group("tui_days")

hostile = pytest.fixture(hostile_service)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def evening() -> float:
    """Today at 23:00, local time."""
    return time.mktime((*time.localtime()[:3], 23, 0, 0, 0, 0, -1))


def failure(item_id: str) -> LiveEvent:
    return LiveEvent("item_error", {"id": item_id, "kind": "done", "status": "error"})


def test_failures_are_counted_from_none_again_each_day() -> None:
    clock = Clock(evening())
    model = QueueModel(clock)
    model.failed = 2  # as the history said at connect
    model.apply(failure("a"))
    assert model.totals()["failed"] == 3
    clock.now += 2 * 3600  # past midnight: a new day
    assert model.totals()["failed"] == 0
    model.apply(failure("b"))
    model.apply(failure("a"))  # told again: counted once
    assert model.totals()["failed"] == 1
    clock.now += 7 * 86400  # a week later, with no event meanwhile
    model.apply(failure("c"))
    assert model.totals()["failed"] == 1


def test_what_failed_while_the_tui_was_away_is_counted_once() -> None:
    clock = Clock(evening())
    model = QueueModel(clock)
    failed = {"id": "x", "kind": "done", "status": "error", "finished_at": clock.now - 60}
    model.ended_meanwhile(failed)
    model.ended_meanwhile(failed)  # the vanished item, and the history's newest: once
    model.apply(failure("x"))  # its event, late
    model.ended_meanwhile({"id": "y", "kind": "done", "status": "error",
                           "finished_at": clock.now - 86400})  # yesterday's
    model.ended_meanwhile({"id": "z", "kind": "done", "status": "finished",
                           "finished_at": clock.now - 60})
    assert model.totals()["failed"] == 1


def test_the_total_speed_is_sampled_for_the_sparkline(hostile: HostileService) -> None:
    item = {"id": "a", "kind": "queue", "status": "downloading", "title": "t", "url": "u",
            "speed": 2048.0, "created_at": 1}
    hostile.answers["/api/history/live"] = {"history_count": 0, "queue": {"a": item}}
    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        sparkline = app.screen.query_one("#speed-sparkline", Sparkline)
        samples = await until(pilot, lambda: list(sparkline.data or []).count(2048.0) >= 2
                              and list(sparkline.data or []), "two samples of the speed")
        # (on a busy box a sample may come before the queue's first answer: nothing then)
        first = samples.index(2048.0)
        assert set(samples[:first]) <= {0.0} and set(samples[first:]) == {2048.0}, samples

    drive(app, scenario)
    assert not app.crash_report
