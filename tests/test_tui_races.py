"""Answers and events that cross: what the TUI shows is the newest the service said, not the
last answer to arrive. Against a service that answers what the test says, when it says."""

from __future__ import annotations

import json
import threading

import pytest
from support.hostile import HostileService, hostile_service
from support.tui_pilot import connected, drive, text_of, until
from textual.pilot import Pilot

from appliance.client import ApiClient, Connection
from appliance.tui.app import ApplianceApp

pytestmark = pytest.mark.xdist_group("tui_hostile")

hostile = pytest.fixture(hostile_service)


def test_a_pause_right_after_a_reconnect_is_not_undone_by_an_older_read(
        hostile: HostileService) -> None:
    """A reconnect reads the configuration again (a restart ends a pause). Its answer, made
    before the person's ``P`` took effect and come after its ``paused`` event, set the
    header back to running over a paused queue (found by a mutation run's stats at a load of
    16: ``test_a_pause_lost_to_a_restart_is_not_shown_nor_resumed``)."""
    configuration = hostile.answers["/api/system/configuration"]
    release = threading.Event()
    reads = []

    def held_read(query: str) -> object:
        reads.append(query)
        release.wait(30)
        return configuration  # "paused": False, as it was when the read was made

    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        assert "PAUSED" not in text_of(app, "#totals-text")
        hostile.answers["/api/system/configuration"] = held_read
        hostile.frames = [json.dumps({"event": "paused", "data": {}})]
        hostile.drop_websockets()
        await until(pilot, lambda: app.connection_state != "connected", "the disconnect")
        await until(pilot, lambda: app.connection_state == "connected" and app.model.paused,
                    "the reconnect and its paused event")
        await until(pilot, lambda: "PAUSED" in text_of(app, "#totals-text"), "PAUSED")
        assert reads, "no read of the configuration was held"
        release.set()
        await until(pilot, lambda: not [w for w in app.workers
                                        if w.group == "configuration" and w.is_running],
                    "the reads answered")
        await pilot.pause(0.2)  # (what a worker brings is applied on the app's loop)
        assert app.model.paused and "PAUSED" in text_of(app, "#totals-text")

    drive(app, scenario)
    assert not app.crash_report
