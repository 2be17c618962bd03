"""``appliance tui`` as its user meets it over years: a service of another version that leaves
out what this one sends, actions on items that moved on meanwhile, keys that race. Against
the hostile service (tests/support/hostile.py, in this process) where the real one never
answers so, against the real one where it does."""

from __future__ import annotations

import json

import pytest
from support.hostile import HostileService, Stream, hostile_service
from support.tui_pilot import connected, drive, lines_of, until
from textual.pilot import Pilot

from appliance.client import ApiClient, Connection
from appliance.tui.app import ApplianceApp

pytestmark = pytest.mark.xdist_group("tui_years")

hostile = pytest.fixture(hostile_service)


def stream_of(*records: dict[str, object]) -> bytes:
    """A log stream's body: one ``log_lines`` event of ``records``, then its end."""
    return f"event: log_lines\ndata: {json.dumps(list(records))}\n\n".encode()


def test_log_records_without_ids_are_each_shown(hostile: HostileService) -> None:
    """A service that names no id for its records (another version, a proxy's log): every
    id-less record shared the id "", all after the first were taken for it and dropped, the
    Logs view silent for good. Each is known by its text now, as the service's ids are."""
    hostile.answers["/api/logs"] = {"logs": [  # newest first
        {"timestamp": "2024-05-01T11:00:01", "level": "ERROR", "logger": "a", "message": "two"},
        {"timestamp": "2024-05-01T11:00:00", "level": "INFO", "logger": "a", "message": "one"},
    ]}
    hostile.answers["/api/logs/stream"] = Stream(stream_of(
        {"line": "2024-05-01 12:00:00,1 INFO x: three"},
        {"line": "2024-05-01 12:00:01,1 WARNING x: four"},
        {"id": "", "line": "2024-05-01 12:00:02,1 INFO x: five"},
        {"line": "2024-05-01 12:00:02,1 INFO x: five"},  # the same record again: once
    ))
    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("3")
        await until(pilot, lambda: "five" in lines_of(app, "#logs-log"), "the last record")
        shown = lines_of(app, "#logs-log").splitlines()
        assert [line.rsplit(" ", 1)[1] for line in shown] == [
            "one", "two", "three", "four", "five"]

    drive(app, scenario)
    assert not app.crash_report
