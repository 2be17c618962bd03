"""Answers of megabytes where ``appliance tui`` shows them whole: an item's details of
20,000 fields, a URL's inspection of 13 MB, a page of the history or of a folder far longer
than asked for, a list of 30,000 presets. Each is shown up to a bound, the rest counted or
left, not laid out whole in the UI (the TUI froze for seconds, or minutes)."""

from __future__ import annotations

import pytest
from support.hostile import HostileService, hostile_service
from support.tui_pilot import connected, drive, no_crash_log, text_of, until
from textual.pilot import Pilot
from textual.widgets import DataTable

from appliance.client import ApiClient, ApiError, Connection
from appliance.tui.app import ApplianceApp
from appliance.tui.format import CLIP_HEAD, CLIP_TAIL, clipped, named
from appliance.tui.screens.add import answer_line
from appliance.tui.screens.details import DETAILS_CHARS, DetailsScreen, table_of
from appliance.tui.views import files, history
from appliance.tui.views.settings import MAX_RECORDS
from appliance.tui.views.subscriptions import inspection

pytestmark = pytest.mark.xdist_group("tui_hostile")

service = pytest.fixture(hostile_service)


_no_crash_log = pytest.fixture(autouse=True)(no_crash_log)


def test_the_details_show_fields_up_to_a_bound_and_count_the_rest() -> None:
    many = {"title": "t", "status": "pending", **{f"k{i:05d}": "v" * 50 for i in range(20_000)}}
    shown = table_of(many).plain
    lines = shown.splitlines()
    assert lines[:3] == ["title            t", "status           pending",
                         "k00000           " + "v" * 50]
    reached = len(lines) - 1  # the fields shown, the last line counts the rest
    assert lines[-1] == f"({20_002 - reached:,} more fields left out)"
    assert DETAILS_CHARS <= len(shown) < DETAILS_CHARS + 100
    # Fields of 64 KiB, each clipped: the bound holds their sum too.
    wide = {f"k{i}": "w" * 65_536 for i in range(500)}
    shown = table_of(wide).plain
    assert len(shown) < DETAILS_CHARS + CLIP_HEAD + CLIP_TAIL + 200
    assert shown.endswith(" more fields left out)\n")
    # A key of a megabyte is a name: its start and end.
    assert table_of({"k" * 1_000_000: 1}).plain == f"{named('k' * 1_000_000)}1\n"
    # An item as items are: every field.
    assert table_of({"title": "t", "url": "u"}).plain == "title            t\nurl              u\n"


def test_a_urls_inspection_of_megabytes_is_shown_by_the_start_and_end_of_each_part() -> None:
    answer = {"handler": "h" * 1_000_000, "matched": True,
              "items": [{"title": "t" * 50_000, "url": "u" * 50_000}] * 300,
              "extra": "x" * 2_000_000}
    assert inspection({"entries": [{"url": "u"}, {"title": "t"}]}).plain == (
        "2 entries\n    u\n  t  \n")  # (what an entry lacks is left blank)
    shown = inspection(answer).plain
    entry = f"  {named('t' * 50_000)}  {named('u' * 50_000)}"
    assert shown == (f"handler   {named('h' * 1_000_000)}\nmatched   True\n300 entries\n"
                     + f"{entry}\n" * 200 + clipped('{\n "extra": "' + "x" * 2_000_000 + '"\n}'))


def test_an_items_details_of_20000_fields_are_shown_up_to_the_bound(
        service: HostileService) -> None:
    item = {"id": "a", "title": "t", "status": "pending", "kind": "queue", "url": "u"}
    many = {**item, **{f"k{i:05d}": "v" * 50 for i in range(20_000)}}
    service.answers["/api/history/live"] = {"history_count": 0, "queue": {"a": item}}
    service.answers["/api/history/a"] = many
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await until(pilot, lambda: app.screen.query_one("#queue-table", DataTable).row_count,
                    "the item")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen)
                    and "more fields left out" in text_of(app, "#details-fields"),
                    "the fields read")
        assert text_of(app, "#details-fields") == table_of(many).plain

    drive(app, scenario, size=(120, 40))
    assert not app.crash_report


def test_pages_and_lists_longer_than_asked_for_are_shown_up_to_a_bound(
        service: HostileService) -> None:
    many = 3000
    service.answers["/api/history"] = {
        "items": [{"id": f"h{i}", "title": f"t{i}", "status": "finished"} for i in range(many)],
        "pagination": {"page": 1, "total": many, "total_pages": 1, "has_next": False}}
    service.answers["/api/file/browser/"] = {
        "path": "", "contents": [{"type": "file", "name": f"n{i}", "path": f"n{i}"}
                                 for i in range(many)],
        "pagination": {"page": 1, "total": many, "total_pages": 1}}
    service.answers["/api/presets"] = {"items": [{"id": i, "name": f"p{i}"} for i in range(many)],
                                       "pagination": {"has_next": False}}
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))

    async def shown(pilot: Pilot, key: str, table: str, rows: int) -> DataTable:
        await pilot.press(key)
        found = app.screen.query_one(f"#{table}", DataTable)
        await until(pilot, lambda: found.row_count, table)
        assert found.row_count == rows
        return found

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await shown(pilot, "2", "history-table", history.PER_PAGE)
        await shown(pilot, "6", "files-table", files.PER_PAGE)
        presets = await shown(pilot, "4", "settings-table", MAX_RECORDS)
        assert text_of(app, "#settings-state").startswith(
            f"Presets (3,000, the first {MAX_RECORDS:,} shown) · k next list")
        presets.move_cursor(row=MAX_RECORDS - 1)
        await pilot.press("d")  # the row's own record
        await until(pilot, lambda: text_of(app, "#confirm Static") == f"Delete p{MAX_RECORDS - 1}?",
                    "the question")

    drive(app, scenario, size=(120, 40))
    assert not app.crash_report


def test_a_long_folder_problem_or_refusal_leaves_the_view_and_the_advice_on_the_screen(
        service: HostileService) -> None:
    """A line that tells a problem while it lasts (the download folder's), and the problem's
    screen: 2,000 characters of the service's reason wrapped to 26 rows of an 80x24
    terminal, the queue's table (or the screen's advice) pushed off it."""
    problem = "the disk of /media/" + "d" * 3000 + " is gone"
    service.answers["/api/health"] = {"download_folder": problem,
                                      "download_path_free_bytes": 1}
    service.answers["/api/history/live"] = {"history_count": 0, "queue": {"a": {
        "id": "a", "title": "t", "status": "pending", "kind": "queue"}}}
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        table = app.screen.query_one("#queue-table", DataTable)
        await until(pilot, lambda: table.row_count, "the item")
        assert text_of(app, "#folder-problem") == named(problem)
        await until(pilot, lambda: table.region.height >= 5, "the table on the screen")
        service.answers["/api/system/configuration"] = (500, {"error": problem})
        app.connect()  # (as the problem screen's r does)
        await until(pilot, lambda: text_of(app, "#problem-advice"), "the problem's screen")
        said = ApiError(500, problem).message  # (the client's cut)
        assert text_of(app, "#problem-reason") == f"{service.url}: {named(said)}"
        advice = app.screen.query_one("#problem-advice")
        await until(pilot, lambda: advice.region.height, "the advice laid out")
        assert advice.region.bottom <= 24

    drive(app, scenario)
    assert not app.crash_report


def test_an_adds_answers_are_shown_by_the_start_and_end_of_each_part() -> None:
    status, removed = "s" * 1_000_000, ["--exec"] * 300_000
    assert answer_line("u", {"status": status, "removed_options": removed}, None).plain == (
        f"✓ {named(status)}: u (removed options: {named(' '.join(removed))})")
    assert answer_line("u", {"status": "queued", "removed_options": 5}, None).plain == (
        "✓ queued: u (removed options: 5)")
