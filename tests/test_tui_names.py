"""What a dialog or a heading of ``appliance tui`` names, when the name is the service's (a
site's title, a file's path, a subscription's name): a megabyte of it is shown by its start
and end, not laid out whole (the TUI froze for seconds); a title that shows nothing names
the item by its URL (the question was "Delete ?"). Against the hostile service
(tests/support/hostile.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from support.hostile import HostileService, hostile_service
from support.tui_pilot import Told, connected, drive, no_crash_log, text_of, until
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, OptionList, Static

from appliance.client import ApiClient, Connection
from appliance.tui.app import ApplianceApp
from appliance.tui.format import NAME_HEAD, NAME_TAIL, name_of, named
from appliance.tui.screens.add import AddScreen
from appliance.tui.screens.confirm import DeleteScreen
from appliance.tui.screens.details import DetailsScreen
from appliance.tui.screens.prompt import PromptScreen

pytestmark = pytest.mark.xdist_group("tui_hostile")

service = pytest.fixture(hostile_service)
HUGE = 1_000_000
URL = "https://videos.example/watch?v=1"


_no_crash_log = pytest.fixture(autouse=True)(no_crash_log)


def queue_of(service: HostileService, *items: dict[str, Any]) -> Told:
    service.answers["/api/history/live"] = {"history_count": 0, "queue": {
        str(item["id"]): {"status": "pending", "kind": "queue", "url": URL, **item}
        for item in items}}
    return Told(ApiClient(Connection(service.url, token="t")))


def question(app: ApplianceApp) -> str:
    return str(app.screen.query(Static).first().render())


async def one_item(pilot: Pilot) -> None:
    """Connected, the queue's item shown."""
    await connected(pilot)
    await until(pilot, lambda: pilot.app.screen.query_one("#queue-table", DataTable).row_count,
                "the item")


def asked_then_refused(app: Told, asked: str) -> Callable[[Pilot], Awaitable[None]]:
    """The queue's one item: ``d`` asks ``asked`` (and is answered no), its keys on the
    24 rows; ``r`` is refused in a toast that names it (the item still waits)."""
    async def scenario(pilot: Pilot) -> None:
        await one_item(pilot)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DeleteScreen), "the question")
        assert question(app) == asked
        keys = app.screen.query(Static)[1]
        assert keys.region.y < 24 and keys.region.height  # the keys' line is on the screen
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, DeleteScreen), "no question")
        await pilot.press("r")
        await until(pilot, lambda: app.told, "the refusal")

    return scenario


def test_named_keeps_a_names_start_and_end() -> None:
    name = "a" * NAME_HEAD + "b" * 1000 + "c" * NAME_TAIL
    assert named(name) == "a" * NAME_HEAD + " … (1,000 characters left out) … " + "c" * NAME_TAIL
    assert named(name[:NAME_HEAD + NAME_TAIL]) == name[:NAME_HEAD + NAME_TAIL]
    keys = ("title", "url", "id")
    assert name_of({"title": " \u200b\u202e\u2066 ", "url": URL}, *keys) == URL
    assert name_of({"title": "", "url": URL}, *keys) == name_of({"url": URL}, *keys) == URL
    assert name_of({"title": None, "id": "x"}, *keys) == "x"
    assert name_of({"title": 0, "url": URL}, *keys) == "0"
    assert name_of({"title": "\x1b[2J", "url": URL}, *keys) == "\x1b[2J"  # shown as ␛[2J
    assert name_of({"title": "\u200b"}, *keys) == "(no name)"
    assert named("Cat\r\n\tDelete every video") == "Cat␍␊␉Delete every video"


def test_a_title_of_many_lines_is_asked_about_in_one(service: HostileService) -> None:
    title = "Cat" + "\n" * 40 + "Delete every video"
    app = queue_of(service, {"id": "a", "title": title})

    drive(app, asked_then_refused(app, f"Delete Cat{'␊' * 40}Delete every video?"))


def test_a_delete_of_a_megabyte_title_names_its_start_and_end(service: HostileService) -> None:
    title = "[bold]Clip[/] " + "x" * HUGE + " the end.mp4"
    app = queue_of(service, {"id": "a", "title": title})

    drive(app, asked_then_refused(app, f"Delete {named(title)}?"))
    asked = f"Delete {named(title)}?"
    assert asked.startswith("Delete [bold]Clip[/] xxx") and asked.endswith("x the end.mp4?")
    assert len(asked) < NAME_HEAD + NAME_TAIL + 50
    assert app.told[0].startswith("[bold]Clip[/] xxx") and len(app.told[0]) <= 2000
    assert not app.crash_report
    assert not [a for a in service.asked if a.startswith("DELETE")]


@pytest.mark.parametrize("title", ["\u200b\u202e\u2066", "   ", ""])
def test_a_title_that_shows_nothing_is_asked_about_by_its_url(
        service: HostileService, title: str) -> None:
    app = queue_of(service, {"id": "a", "title": title})

    drive(app, asked_then_refused(app, f"Delete {URL}?"))
    assert app.told[0].startswith(f"{URL} has not ended (pending)")


def test_a_folders_and_files_megabyte_paths_are_named_by_their_start_and_end(
        service: HostileService) -> None:
    folder = "shows/" + "f" * HUGE
    path = f"{folder}/" + "n" * HUGE + ".mp4"
    entry = {"type": "file", "name": path.rpartition("/")[2], "path": path, "size": 1}
    service.answers["/api/file/browser/"] = {
        "path": folder, "contents": [entry],
        "pagination": {"page": 1, "total": 1, "total_pages": 1}}
    app = queue_of(service)

    async def asked(pilot: Pilot, key: str, screen: type, shown: str) -> None:
        await pilot.press(key)
        await until(pilot, lambda: isinstance(app.screen, screen), f"the question of {key}")
        assert question(app) == shown
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, screen), f"{key} answered")

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("6")
        await until(pilot, lambda: app.screen.query_one("#files-table", DataTable).row_count,
                    "the file")
        assert text_of(app, "#files-state").startswith(f"/{named(folder)} · 1 entries")
        await asked(pilot, "d", DeleteScreen, f"Delete {named(path)}?")
        await asked(pilot, "r", PromptScreen, named(f"Rename {path} to:"))
        await asked(pilot, "m", PromptScreen, named(f"Move {path} into the folder:"))
        await pilot.press("r")  # the name given to change stays whole: it is what is sent
        field = await until(pilot, lambda: isinstance(app.screen, PromptScreen)
                            and app.screen.query_one(Input), "the rename")
        assert field.value == entry["name"]

    drive(app, scenario, size=(100, 30))
    assert named(folder).endswith("f" * NAME_TAIL) and len(named(path)) < 400
    assert not app.crash_report


def test_a_megabyte_command_is_shown_by_its_start_and_end(service: HostileService) -> None:
    command = "yt-dlp " + "-x " * HUGE + URL
    service.answers["/api/system/configuration"]["app"]["console_enabled"] = True
    service.answers["POST /api/yt-dlp/command"] = {"command": command}
    service.answers["/api/history/a"] = {"id": "a", "title": "t", "url": URL,
                                         "status": "pending"}
    app = queue_of(service, {"id": "a", "title": "t"})

    async def scenario(pilot: Pilot) -> None:
        await one_item(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen), "the details")
        await pilot.press("y")
        await until(pilot, lambda: text_of(app, "#details-command"), "the command")
        shown = text_of(app, "#details-command")
        assert shown.startswith("yt-dlp -x -x") and shown.endswith(f"-x {URL}")
        assert "(2,992,039 characters left out)" in shown

    drive(app, scenario)
    assert not app.crash_report


def test_the_add_forms_megabyte_names_are_shown_by_their_start_and_end(
        service: HostileService) -> None:
    """A preset's name, a download field's name and its description."""
    preset, field, about = ("p" * HUGE + "[/b]", "[b]f" + "f" * HUGE, "d" * HUGE + ".")
    service.answers["/api/system/configuration"].update(
        presets=[{"name": preset}],
        dl_fields=[{"name": field, "field": "season", "kind": "text", "description": about}])
    app = queue_of(service)

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("a")
        screen = await until(pilot, lambda: isinstance(app.screen, AddScreen) and app.screen,
                             "the add form")
        await until(pilot, lambda: screen.query("Input.dl-field"), "its fields")
        options = screen.query_one("SelectOverlay", OptionList)
        assert str(options.get_option_at_index(1).prompt) == named(preset)
        assert named(field) in [str(label.render()) for label in screen.query(Label)]
        assert screen.query_one("Input.dl-field", Input).placeholder == named(about)
        await pilot.press("escape")

    drive(app, scenario, size=(100, 40))
    assert not app.crash_report


def test_a_preset_or_subscription_whose_name_shows_nothing_is_asked_about_by_another_part(
        service: HostileService) -> None:
    service.answers["/api/presets"] = {"items": [{"id": 7, "name": "\u200b\u202e"}],
                                       "pagination": {"has_next": False}}
    feed = "https://feed.example/channel"
    service.answers["/api/tasks"] = {"items": [{"id": 1, "name": " \u2066", "url": feed}],
                                     "pagination": {"has_next": False}}
    app = queue_of(service)

    async def asked(pilot: Pilot, view: str, table: str, shown: str) -> None:
        await pilot.press(view)
        await until(pilot, lambda: app.screen.query_one(f"#{table}", DataTable).row_count,
                    table)
        await pilot.press("d" if view == "4" else "u")
        await until(pilot, lambda: isinstance(app.screen, DeleteScreen), "the question")
        assert question(app) == shown
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, DeleteScreen), "no question")

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await asked(pilot, "4", "settings-table", "Delete 7?")
        await asked(pilot, "5", "subscriptions-table",
                    f"Delete the marks of {feed} (its entries may be queued again)?")

    drive(app, scenario, size=(100, 30))
    assert not app.crash_report
    assert not [a for a in service.asked if a.startswith("DELETE")]
