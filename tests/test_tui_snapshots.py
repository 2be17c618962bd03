"""Pictures of every view of ``appliance tui`` at 80x24 (a phone's SSH app) and 120x40, with
fixed data (tests/support/tui_fixed.py), compared with the accepted ones in
``__snapshots__``. After a deliberate change: ``pytest tests/test_tui_snapshots.py
--snapshot-update``, then look at the new pictures before committing them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from support.tui_fixed import FixedApp
from support.tui_pilot import until
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from appliance.tui import app as tui_app

pytestmark = pytest.mark.xdist_group("tui_snapshots")


@pytest.fixture(autouse=True)
def steady(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same picture on every machine: UTC, and no speed sample taken while it is made."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(tui_app, "SPEED_SAMPLE_SECONDS", 3600.0)


async def picture_ready(pilot: Pilot) -> None:
    """A focused field's cursor blinks: drawn or not by the clock when the picture is taken
    (a loaded machine caught it off). Steady on, as the accepted pictures have it."""
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def rows(table_id: str, count: int) -> Callable[[Any], bool]:
    return lambda app: app.screen.query_one(f"#{table_id}", DataTable).row_count >= count


def text(selector: str, wanted: str) -> Callable[[Any], bool]:
    return lambda app: wanted in "".join(
        "".join(s.text for s in line) for line in app.screen.query_one(selector).lines)


VIEWS = {
    "queue": ((), rows("queue-table", 5)),
    "history": (("2",), rows("history-table", 8)),
    "logs": (("3",), text("#logs-log", "task 'Science channel'")),
    "settings": (("4",), rows("settings-table", 3)),
    "subscriptions": (("5",), rows("subscriptions-table", 4)),
    "files": (("6",), rows("files-table", 5)),
}


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("view", list(VIEWS))
def test_view(snap_compare: Any, view: str, size: tuple[int, int]) -> None:
    keys, ready = VIEWS[view]

    async def show(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.connection_state == "connected", "connected")
        await until(pilot, lambda: rows("queue-table", 5)(pilot.app), "the queue")
        await pilot.press(*keys)
        await until(pilot, lambda: ready(pilot.app), f"the {view} view filled")
        await picture_ready(pilot)

    assert snap_compare(FixedApp(), terminal_size=size, run_before=show)


SCREENS = {
    "run-log": (("5", "l"), lambda app: app.screen.query("#text-state")
                and "ended" in str(app.screen.query_one("#text-state").render())),
    "file-details": (("6", "down", "down", "i"), text("#text-body", "audio")),
    "inspect-prompt": (("5", "i"), lambda app: app.screen.query("#prompt-input")),
}


@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(snap_compare: Any, screen: str) -> None:
    """The dialogs of the new views, at 80x24."""
    keys, ready = SCREENS[screen]

    async def show(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.connection_state == "connected", "connected")
        await pilot.press(keys[0])
        await until(pilot, lambda: pilot.app.screen.query("DataTable").first().row_count,
                    "the view filled")
        await pilot.press(*keys[1:])
        await until(pilot, lambda: ready(pilot.app), f"the {screen} screen")
        await picture_ready(pilot)

    assert snap_compare(FixedApp(), terminal_size=(80, 24), run_before=show)
