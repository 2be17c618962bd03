"""What the TUI holds stays bounded whatever the service sends: a flood of new queue ids over
the websocket (a compromised service, or a queue of a hundred thousand) keeps the newest
items, says that older ones are left out, and the memory stays flat."""

from __future__ import annotations

import json
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from support.hostile import HostileService, hostile_service
from support.tui_pilot import cell, drive, text_of, until
from textual.pilot import Pilot
from textual.widgets import DataTable

from appliance.client import ApiClient, Connection, LiveEvent
from appliance.tui import model as tui_model
from appliance.tui.app import ApplianceApp
from appliance.tui.model import MAX_ITEMS, QueueModel
from appliance.tui.views import subscriptions
from appliance.tui.views.queue import LEFT_OUT, QueueView
from appliance.tui.views.subscriptions import SubscriptionsView

pytestmark = pytest.mark.xdist_group("tui_hostile")

service = pytest.fixture(hostile_service)


def added(item_id: str, status: str = "pending") -> LiveEvent:
    return LiveEvent("item_added", {"id": item_id, "kind": "queue", "status": status})


def test_the_oldest_ended_items_are_left_out_first_running_ones_last(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tui_model, "MAX_ITEMS", 4)
    monkeypatch.setattr(tui_model, "LEAVE_OUT_BATCH", 2)
    model = QueueModel()
    for item_id, status in (("wait1", "pending"), ("wait2", "pending"), ("wait3", "pending"),
                            ("end1", "error"), ("run1", "downloading"),
                            ("run2", "postprocessing")):
        model.apply(added(item_id, status))
    assert len(model.items) == 6 and not model.left_out  # within the batch
    model.apply(added("wait4"))  # one past it: down to 4 at once
    assert list(model.items) == ["wait3", "run1", "run2", "wait4"]
    assert model.left_out
    dirty, removed = model.take_changes()
    assert removed == {"end1", "wait1", "wait2"} and dirty == set(model.items)
    model.apply(added("wait5"))
    assert len(model.items) == 5  # until the view repaints: then exactly the newest 4
    assert model.take_changes()[1] == {"wait3"} and list(model.items) == [
        "run1", "run2", "wait4", "wait5"]
    model.snapshot({"queue": {"run1": {"status": "downloading"}}})
    assert not model.left_out  # the service's queue fits
    model.snapshot({"queue": {"run1": {"status": "downloading"}}, "queue_count": 1})
    assert not model.left_out  # the service sent all it holds
    model.snapshot({"queue": {"run1": {"status": "downloading"}}, "queue_count": 2})
    assert model.left_out  # it holds more than it sent
    model.snapshot({"queue": {f"s{n}": {"status": "pending"} for n in range(7)}})
    model.take_changes()
    assert model.left_out and list(model.items) == ["run1", "run2", "s5", "s6"]


def test_a_failure_is_counted_once_and_the_memory_of_counted_ones_is_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tui_model, "COUNTED_FAILURES", 3)
    model = QueueModel()
    for item_id in ("a", "b", "a", "c", "d", "d"):
        model.apply(LiveEvent("item_error", {"id": item_id, "kind": "done",
                                             "status": "error"}))
    assert model.failed == 4
    assert list(model.counted_failures) == ["b", "c", "d"]


def frames(first: int, last: int) -> Iterator[str]:
    """``item_added`` of the new ids ``first`` … ``last - 1``, then each ``item_error``."""
    for n in range(first, last):
        item = {"id": f"i{n}", "kind": "queue", "status": "pending", "created_at": n,
                "title": f"item {n} " + "x" * 200}
        yield json.dumps({"event": "item_added", "data": item})
        yield json.dumps({"event": "item_error", "data": {**item, "status": "error"}})


def test_a_flood_of_new_queue_ids_keeps_the_newest_and_the_memory_flat(
        service: HostileService) -> None:
    gate = threading.Event()

    # One past the bound fills the table and leaves one out; then three times as many new
    # ones again as it holds (the memory's test). (Each frame costs the most under
    # tracemalloc: a first flood of twice the bound made the test slower, not stronger.)
    first = MAX_ITEMS + 1
    last = first + 3 * MAX_ITEMS

    def flood() -> Iterator[str]:
        yield from frames(0, first)
        yield json.dumps({"event": "paused", "data": {}})
        gate.wait(120)
        yield from frames(first, last)
        yield json.dumps({"event": "resumed", "data": {}})

    service.frames = flood()  # type: ignore[assignment]  # sent as it is iterated
    app = ApplianceApp(ApiClient(Connection(service.url)))
    newest = f"i{last - 1}"

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.model.paused, "the first flood", seconds=120)
        table = app.screen.query_one("#queue-table", DataTable)
        await until(pilot, lambda: table.row_count == MAX_ITEMS, "the table bounded")
        assert text_of(app, "#left-out") == LEFT_OUT
        assert app.screen.query_one("#left-out").display
        held = tracemalloc.get_traced_memory()[0]
        gate.set()
        await until(pilot, lambda: not app.model.paused, "the second flood", seconds=300)
        await until(pilot, lambda: newest in rows(app), "the newest item shown")
        grown = tracemalloc.get_traced_memory()[0] - held
        assert table.row_count == len(app.model.items) == MAX_ITEMS
        assert min(int(i[1:]) for i in app.model.items) == last - MAX_ITEMS
        assert app.model.failed == last
        # Three times as many items again as the view holds, each some KiB with its row (20
        # MiB, had they been kept): what the TUI holds after them is what it held before,
        # but for Textual's render caches, which fill up to their bounds (about 1.4 MiB), and
        # what its threads hold in flight when it is read (2.1-4.5 MiB measured in all: a
        # bound of 4 MiB failed under load).
        assert grown < 8 * 2**20, f"{grown} bytes more after the second flood"

    tracemalloc.start()
    try:
        drive(app, scenario, size=(120, 40))
    finally:
        tracemalloc.stop()
    assert not app.crash_report


def test_a_flood_of_new_tasks_is_shown_up_to_a_bound(
        service: HostileService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subscriptions, "MAX_TASKS", 5)
    service.answers["/api/tasks"] = {"items": [{"id": n, "name": f"t{n}"} for n in range(7)],
                                     "pagination": {"has_next": False}}
    gate = threading.Event()

    def flood() -> Iterator[str]:
        gate.wait(120)  # once the view has read the tasks
        for action, task in [("delete", {"id": 0}), *(("create", {"id": n, "name": f"n{n}"})
                                                      for n in range(100, 400)),
                             ("update", {"id": 1, "name": "renamed"})]:
            yield json.dumps({"event": "config_update", "data": {
                "feature": "tasks", "action": action, "data": task}})
        yield json.dumps({"event": "paused", "data": {}})

    service.frames = flood()  # type: ignore[assignment]  # sent as it is iterated
    app = ApplianceApp(ApiClient(Connection(service.url)))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        await pilot.press("5")
        view = app.screen.query_one(SubscriptionsView)
        table = app.screen.query_one("#subscriptions-table", DataTable)
        await until(pilot, lambda: table.row_count == 5, "the first five tasks")
        gate.set()
        await until(pilot, lambda: app.model.paused, "the frame after the flood")
        await until(pilot, lambda: cell(app, "subscriptions-table", "1", "name") == "renamed"
                    and table.row_count == 5, "the bounded table")
        assert sorted(view.tasks) == ["1", "100", "2", "3", "4"]
        assert text_of(app, "#subscriptions-state").startswith("Subscriptions (5) ")

    drive(app, scenario, size=(120, 40))
    assert not app.crash_report


def rows(app: ApplianceApp) -> dict[str, Any]:
    return app.screen.query_one(QueueView).rows


def test_the_queue_repaints_while_its_parts_are_gone(service: HostileService) -> None:
    """The app's clock repaints the queue while the app closes, its widgets going one by one:
    the note on left-out items, gone before the table, stopped the TUI with NoMatches."""
    service.frames = [json.dumps({"event": "paused", "data": {}})]
    app = ApplianceApp(ApiClient(Connection(service.url)))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.model.paused, "the service's frame")
        queue = app.screen.query_one(QueueView)
        for part in ("#left-out", "#totals-text"):
            await queue.query_one(part).remove()
        app.model.apply(added("late"))
        queue.repaint()  # the table is still there; the rest is not
        assert "late" in queue.rows

    drive(app, scenario)


def test_a_left_out_waiting_items_events_do_not_churn_the_table(
        service: HostileService) -> None:
    """A queue longer than the TUI holds: the queue reads each waiting item's info, oldest
    first, and each such event named an item the TUI had left out. Ranked by when it was
    first seen, it came back in place of one shown: a row removed and one added at every
    repaint, the whole table redrawn (11-14 KB/s to the terminal in ``bench/tui.py``, its
    goal 10). The snapshot's own choice (the newest) stays."""
    shown = {f"w{n}": {"id": f"w{n}", "kind": "queue", "status": "pending", "title": f"w{n}",
                       "created_at": 1000 + n} for n in range(MAX_ITEMS)}
    service.answers["/api/history/live"] = {"history_count": 0, "queue": shown,
                                            "queue_count": 3 * MAX_ITEMS}
    service.frames = [*(json.dumps({"event": "item_updated", "data": {
        "id": f"old{n}", "kind": "queue", "status": "pending", "title": f"old {n}",
        "created_at": n}}) for n in range(20)), json.dumps({"event": "paused", "data": {}})]
    app = ApplianceApp(ApiClient(Connection(service.url)))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.model.paused, "the events")
        table = app.screen.query_one("#queue-table", DataTable)
        app.repaint_queue()
        assert [str(key.value) for key in table.rows] == sorted(
            shown, key=lambda i: shown[i]["created_at"])
        assert set(app.model.items) == set(shown) and app.model.left_out

    drive(app, scenario, size=(120, 40))
    assert not app.crash_report


def test_a_cell_that_changed_redraws_its_row_not_the_table(service: HostileService) -> None:
    """DataTable's ``update_cell`` redraws the whole table: at each repaint every line of it
    went to the terminal again for any cell that changed, even of a row off the screen
    (``bench/tui.py``: 11 KB/s at 80x24 with 5 downloads, its goal 10; 2.5 KB/s now)."""
    shown = {f"w{n}": {"id": f"w{n}", "kind": "queue", "status": "pending", "title": f"w{n}",
                       "created_at": n} for n in range(100)}
    service.answers["/api/history/live"] = {"history_count": 0, "queue": shown}
    app = ApplianceApp(ApiClient(Connection(service.url)))
    redrawn: list[tuple[Any, ...]] = []

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        table = app.screen.query_one("#queue-table", DataTable)
        await until(pilot, lambda: table.row_count == 100, "the rows")
        table.refresh = lambda *regions, **kwargs: redrawn.append(regions)  # type: ignore
        for item_id in ("w1", "w99"):  # on the screen, and off it
            app.model.apply(LiveEvent("item_updated", {"id": item_id, "kind": "queue",
                                                       "status": "downloading"}))
        app.repaint_queue()
        assert cell(app, "queue-table", "w99", "status") == "downloading"
        assert cell(app, "queue-table", "w1", "status") == "downloading"
        assert len(redrawn) == 1 and len(redrawn[0]) == 1  # w1's line only
        assert redrawn[0][0].height == 1

    drive(app, scenario)
    assert not app.crash_report
