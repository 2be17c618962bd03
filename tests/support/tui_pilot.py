"""Driving ``appliance tui`` with Textual's pilot: run a scenario, wait on conditions, read
what the screen shows."""

from __future__ import annotations

import asyncio
import collections
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.widgets import DataTable, RichLog, Static

from appliance.client import ApiClient, Connection
from appliance.tui.app import ApplianceApp
from appliance.tui.threads import THREAD_NAME

from .server import Server

SIZE = (80, 24)


def drive(app: ApplianceApp, scenario: Callable[[Pilot], Coroutine[Any, Any, None]],
          size: tuple[int, int] = SIZE, notifications: bool = False,
          settle: bool = True) -> None:
    """Run ``scenario`` on ``app`` under the pilot (``notifications``: toasts are drawn,
    which Textual's test runs leave out unless asked); ``settle``: then wait for its
    workers' threads (see :func:`settled`)."""
    async def run() -> None:
        async with app.run_test(size=size, notifications=notifications) as pilot:
            await scenario(pilot)

    asyncio.run(run())
    if settle:
        settled()


class Told(ApplianceApp):
    """The app, with the text of every toast it shows kept in ``told`` (its severity in
    ``severities``)."""

    def __init__(self, client: ApiClient) -> None:
        super().__init__(client)
        self.told: list[str] = []
        self.severities: list[str] = []

    def on_notify(self, event: Notify) -> None:  # the toast as Textual gets it
        self.told.append(event.notification.message)
        self.severities.append(event.notification.severity)


def no_crash_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An autouse fixture's body: the TUI's crash log goes to the test's folder, and a test
    after which there is one fails (a crash the pilot did not raise)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    yield
    assert not (tmp_path / "state" / "appliance" / "tui.log").exists()


def settled(seconds: float = 180) -> None:
    """The TUI's worker threads have ended. The app does not wait for them when it closes
    (appliance.tui.threads): what one still did after its test (read an answer of
    megabytes, say) was counted in the next test's memory or requests."""
    for thread in threading.enumerate():
        if thread.name == THREAD_NAME:
            thread.join(seconds)
            assert not thread.is_alive(), f"a TUI worker still runs after {seconds:g} s"


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


def lines_of(app: ApplianceApp, selector: str) -> str:
    """The text of a RichLog on the current screen, a line each."""
    log = app.screen.query_one(selector, RichLog)
    return "\n".join("".join(s.text for s in line) for line in log.lines)


async def connected(pilot: Pilot) -> None:
    await until(pilot, lambda: pilot.app.connection_state == "connected", "the live feed")


def select(app: ApplianceApp, table_id: str, row: str) -> None:
    table = app.screen.query_one(f"#{table_id}", DataTable)
    table.move_cursor(row=table.get_row_index(row))




def start_service(root: Path, **env: str) -> Server:
    """A service with a password (the TUI's tests also log in with it) and ``env``."""
    server = Server(root, {"YTP_AUTH_USERNAME": "admin", "YTP_AUTH_PASSWORD": "correct horse",
                           **env}).start()
    server.session.auth = ("admin", "correct horse")
    return server


def show_token(server: Server) -> str:
    """The service's API token, as ``appliance web showtoken`` prints it."""
    shown = subprocess.run([sys.executable, "-m", "appliance", "web", "showtoken"],
                           env=server.env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.strip()


class Counted(ApiClient):
    """The real client, its requests counted by path; the queue's snapshot held back while
    ``hold`` is clear (what happens meanwhile is what the TUI was away for)."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.calls: collections.Counter[str] = collections.Counter()
        self.hold = threading.Event()
        self.hold.set()
        self._lock = threading.Lock()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._lock:
            self.calls[f"{method} {path}"] += 1
        return super().request(method, path, **kwargs)

    def live(self, queue_limit: int | None = None) -> dict[str, Any]:
        assert self.hold.wait(60), "the test never let the snapshot go"
        return super().live(queue_limit)

    def item_reads(self) -> int:
        return sum(n for call, n in self.calls.items() if call.startswith("GET /api/history/")
                   and call != "GET /api/history/live")
