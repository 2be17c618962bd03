"""Driving ``appliance tui`` with Textual's pilot: run a scenario, wait on conditions, read
what the screen shows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from appliance.tui.app import ApplianceApp

SIZE = (80, 24)


def drive(app: ApplianceApp, scenario: Callable[[Pilot], Coroutine[Any, Any, None]],
          size: tuple[int, int] = SIZE) -> None:
    async def run() -> None:
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)

    asyncio.run(run())


async def until(pilot: Pilot, predicate: Callable[[], Any], what: str,
                seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")


def cell(app: ApplianceApp, table_id: str, row: str, column: str) -> str:
    table = app.screen.query_one(f"#{table_id}", DataTable)
    try:
        return str(getattr(value := table.get_cell(row, column), "plain", value))
    except Exception:  # the row is not (or no longer) there
        return ""


def text_of(app: ApplianceApp, selector: str) -> str:
    """The text of a Static on the current screen ("" while the screen is being built)."""
    found = app.screen.query(selector)
    return str(found.first(Static).render()) if found else ""


async def connected(pilot: Pilot) -> None:
    await until(pilot, lambda: pilot.app.connection_state == "connected", "the live feed")


def select(app: ApplianceApp, table_id: str, row: str) -> None:
    table = app.screen.query_one(f"#{table_id}", DataTable)
    table.move_cursor(row=table.get_row_index(row))


