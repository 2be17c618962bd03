"""Credentials refused in the middle of a session of ``appliance tui`` (a token made anew
with ``appliance web gentoken`` while it runs): the problem's screen that says what to do,
as at the start, at the first request refused, not a toast of the service's words at each
key until the service dropped the live feed too. Against the real service."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from support.server import Server
from support.tui_pilot import (
    Told,
    connected,
    drive,
    no_crash_log,
    show_token,
    start_service,
    text_of,
    until,
)
from textual.pilot import Pilot

from appliance.client import ApiClient, Connection
from appliance.tui.screens.problem import ProblemScreen


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_service(tmp_path_factory.mktemp("credentials"))
    yield server
    server.stop()


_no_crash_log = pytest.fixture(autouse=True)(no_crash_log)


def new_token(service: Server) -> None:
    made = subprocess.run([sys.executable, "-m", "appliance", "web", "gentoken"],
                          env=service.env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr


async def refused(pilot: Pilot) -> None:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, ProblemScreen)
                and app.screen.kind == "refused" and text_of(app, "#problem-advice"),
                "the refusal's screen")
    assert "appliance web showtoken" in text_of(app, "#problem-advice")
    assert text_of(app, "#problem-reason").endswith(": Invalid credentials.")


@pytest.mark.parametrize("key", ["P", "2"])  # an action (pause all), a view's read (history)
def test_a_token_made_anew_while_the_tui_runs_is_said_with_what_to_do(
        service: Server, key: str) -> None:
    app = Told(ApiClient(Connection(service.url, token=show_token(service))))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        new_token(service)
        await pilot.press(key)
        await refused(pilot)
        first = app.screen
        await pilot.press("r")  # tried again: refused again, said again
        await until(pilot, lambda: app.screen is not first, "the try")
        await refused(pilot)
        await pilot.press("q")

    drive(app, scenario)
    assert not app.crash_report
    assert app.return_code == 0
    # (the service's own warning of the refusal comes by the feed, as any other)
    assert "Invalid credentials." not in app.told
