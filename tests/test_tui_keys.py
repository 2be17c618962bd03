"""Keys that have nothing to work on in ``appliance tui``: a form queued with no URL, a
search left empty, a record's editor before anything was saved. Each says so, or shows
nothing, and asks the service nothing (tests/support/hostile.py)."""

from __future__ import annotations

import pytest
from support.hostile import HostileService, hostile_service
from support.tui_pilot import Told, connected, drive, text_of, until
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from appliance.client import ApiClient, Connection
from appliance.tui.screens.add import AddScreen
from appliance.tui.screens.record import RecordScreen

pytestmark = pytest.mark.xdist_group("tui_hostile")

service = pytest.fixture(hostile_service)


def test_a_form_an_empty_search_and_a_new_record_with_nothing_in_them(
        service: HostileService) -> None:
    service.answers["/api/presets"] = {"items": [], "pagination": {"has_next": False}}
    app = Told(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AddScreen), "the add form")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.told, "the warning")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, AddScreen), "the form closed")
        await pilot.press("2")
        await until(pilot, lambda: "page 1/1" in text_of(app, "#history-state"), "the history")
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.focused, Input), "the search line")
        await pilot.press("enter")  # nothing typed
        await until(pilot, lambda: isinstance(app.focused, DataTable), "the table again")
        await pilot.press("4")
        await until(pilot, lambda: "Presets (0)" in text_of(app, "#settings-state"), "presets")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, RecordScreen)
                    and app.screen.query("#record-error"), "the editor")
        assert text_of(app, "#record-error") == ""
        await pilot.press("escape")

    drive(app, scenario)
    assert not app.crash_report
    assert (app.told, app.severities) == (["Paste at least one URL."], ["warning"])
    assert not [asked for asked in service.asked if asked.startswith("POST")]
    assert not [query for query in service.queries if "search=" in query]
