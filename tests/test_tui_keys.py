"""Keys of ``appliance tui`` at their edges, against the hostile service
(tests/support/hostile.py): with nothing to work on (a form queued with no URL, a search left
empty, a record's editor before anything was saved: each says so, or shows nothing, and asks
the service nothing); a selection across a folder read again; what a subscription's line says
of a failure the service did not count, a download's percent; a pause made while the TUI
was away."""

from __future__ import annotations

import pytest
from support.hostile import HostileService, hostile_service
from support.tui_pilot import Told, connected, drive, text_of, until
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from appliance.client import ApiClient, Connection
from appliance.tui.model import percent_of
from appliance.tui.screens.add import AddScreen
from appliance.tui.screens.record import RecordScreen
from appliance.tui.views.subscriptions import outcome

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


async def view_of(pilot: Pilot, key: str, table_id: str, rows: int) -> DataTable:
    """Connected, the view of ``key`` shown with its table's ``rows``."""
    await connected(pilot)
    await pilot.press(key)
    table = pilot.app.screen.query_one(f"#{table_id}", DataTable)
    await until(pilot, lambda: table.row_count == rows, f"the {table_id}'s rows")
    return table


def test_the_files_selection_stays_on_its_entry_when_the_folder_changes(
        service: HostileService) -> None:
    def folder(*names: str) -> dict[str, object]:
        return {"path": "", "contents": [{"type": "file", "name": n, "path": n} for n in names],
                "pagination": {"page": 1, "total": len(names), "total_pages": 1}}

    service.answers["/api/file/browser/"] = folder("a", "b", "c")
    app = Told(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        table = await view_of(pilot, "6", "files-table", 3)
        await pilot.press("down", "down")
        service.answers["/api/file/browser/"] = folder("0", "a", "b", "c")  # one came first
        await pilot.press("g")
        await until(pilot, lambda: table.row_count == 4, "the folder read again")
        assert table.cursor_row == 3
        assert table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value == "c"
        # A name longer than its column ends in "…" (one line a row: the rest is cut)
        service.answers["/api/file/browser/"] = folder("0", "a", "b", "c", "n" * 200)
        await pilot.press("g")
        await until(pilot, lambda: table.row_count == 5, "the long name")
        await pilot.pause()
        rows = [table.render_line(y).text for y in range(table.region.height)]
        assert any("nnnn…" in row for row in rows), rows

    drive(app, scenario)
    assert not app.crash_report


def test_a_subscriptions_failure_and_long_name_on_its_line(service: HostileService) -> None:
    """A failure the service did not count is one; a name longer than its column ends in
    "…"."""
    assert outcome({"last_status": "failed", "failures": 3}).plain == "failed x3"
    service.answers["/api/tasks"] = {"items": [{"id": 1, "name": "s" * 200,
                                                "last_status": "failed"}],
                                     "pagination": {"has_next": False}}
    app = Told(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        table = await view_of(pilot, "5", "subscriptions-table", 1)
        await pilot.pause()
        row = table.render_line(1).text  # (below the header)
        assert "ssss… " in row and "failed x1" in row, row

    drive(app, scenario)
    assert not app.crash_report


def test_a_downloads_percent_is_the_services_own_when_it_gives_one() -> None:
    assert percent_of({"percent": 42, "downloaded_bytes": 1, "total_bytes": 4}) == 42
    assert percent_of({"progress": 7}) == 7  # (another version's name for it)
    assert percent_of({"downloaded_bytes": 1, "total_bytes": 4}) == 25
    assert percent_of({"status": "finished"}) == 100
    assert percent_of({"status": "downloading"}) is None


def test_a_pause_made_while_the_tui_was_away_is_shown_once_it_is_back(
        service: HostileService) -> None:
    """The configuration is read again at the reconnect's snapshot (the read at the drop
    comes before the pause): the header said nothing of a queue paused meanwhile."""
    configuration = "GET /api/system/configuration"
    app = Told(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        service.ws_refusal = 503  # away for a while
        read = service.asked.count(configuration)
        service.drop_websockets()
        await until(pilot, lambda: service.asked.count(configuration) > read, "the drop's read")
        await until(pilot, lambda: app.connection_state == "disconnected", "the drop")
        service.answers["/api/system/configuration"]["paused"] = True  # meanwhile
        service.ws_refusal = None
        await connected(pilot)
        await until(pilot, lambda: "PAUSED" in text_of(app, "#totals-text"), "PAUSED")

    drive(app, scenario)
    assert not app.crash_report
