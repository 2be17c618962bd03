"""The Subscriptions and Files views of ``appliance tui``, driven by Textual's pilot against
the real service (gunicorn, the tasks scheduler, the file index, the local media origin)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.feeds import FeedEntry
from support.origin import MediaOrigin
from support.server import Server
from support.tui_pilot import (
    cell,
    connected,
    drive,
    lines_of,
    select,
    show_token,
    start_service,
    text_of,
    until,
)
from textual.pilot import Pilot

from appliance.client import ApiClient, Connection
from appliance.tui.app import ApplianceApp

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("tui_views")]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, origin: MediaOrigin) -> Iterator[Server]:
    server = start_service(tmp_path_factory.mktemp("tui-views"),
                           YTP_BROWSER_CONTROL_ENABLED="true", YTP_TASKS_SPREAD="0",
                           YTP_YOUTUBE_BASE_URL=origin.base_url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token(service: Server) -> str:
    return show_token(service)


def test_subscription_runs_and_its_outcome_comes_over_the_websocket(
        service: Server, token: str, origin: MediaOrigin) -> None:
    origin.feeds.set("tui-subs", [FeedEntry(id="tuisubs0001", url=origin.watch_url("clip"),
                                            title="a clip")])
    feed = f"{origin.base_url}/feeds/tui-subs.rss"
    created = service.post("/api/tasks", {"name": "tui subscription", "url": feed,
                                          "auto_start": False, "timer": "0 3 * * *"})
    assert created.status_code == 200, created.text
    task_id = str(created.json()["id"])
    app = ApplianceApp(ApiClient(Connection(service.url, token=token)))
    listed: list[int] = []
    read_tasks = app.client.tasks
    app.client.tasks = lambda: listed.append(1) or read_tasks()  # type: ignore[method-assign]

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("5")
        await until(pilot, lambda: cell(app, "subscriptions-table", task_id, "outcome")
                    == "never run", "the subscription listed")
        assert cell(app, "subscriptions-table", task_id, "next") not in {"", "-", "off"}
        select(app, "subscriptions-table", task_id)
        gate = origin.feeds.hold("tui-subs")
        try:
            await pilot.press("r")
            await until(pilot, lambda: cell(app, "subscriptions-table", task_id, "outcome")
                        == "running", "the run started")
            # Its log, live: the first line while the feed is held, the rest once it answers.
            await pilot.press("l")
            await until(pilot, lambda: feed in lines_of(app, "#text-body"), "the first line")
            assert text_of(app, "#text-state") == "following…"
        finally:
            gate.set()
        await until(pilot, lambda: "queued 1" in lines_of(app, "#text-body")
                    and text_of(app, "#text-state") == "the run has ended", "the log's end")
        await pilot.press("escape")
        await until(pilot, lambda: cell(app, "subscriptions-table", task_id, "outcome")
                    == "success +1", "the run's outcome")
        assert cell(app, "subscriptions-table", task_id, "last") != "—"
        assert len(listed) == 1  # the outcome came over the websocket, not a new listing

        # A finished run's log: all of it at once.
        await pilot.press("l")
        await until(pilot, lambda: "found 1 entries" in lines_of(app, "#text-body")
                    and "ended" in text_of(app, "#text-state"), "the finished run's log")
        await pilot.press("escape")

        # Off, then on again: the service is changed and the table follows.
        await pilot.press("e")
        await until(pilot, lambda: cell(app, "subscriptions-table", task_id, "on") == "-",
                    "disabled")
        assert service.get(f"/api/tasks/{task_id}").json()["enabled"] is False
        assert cell(app, "subscriptions-table", task_id, "next") == "off"
        await pilot.press("e")
        await until(pilot, lambda: cell(app, "subscriptions-table", task_id, "on") == "✓",
                    "enabled again")

        # Mark what the feed lists as seen; a new entry alone is queued by the next run.
        await pilot.press("m")
        await until(pilot, lambda: any("Marked 1 entr" in str(n.message)
                                       for n in app._notifications), "the mark")
        await pilot.press("u", "y")  # asks first
        await until(pilot, lambda: any("from the archive" in str(n.message)
                                       and "Removed" in str(n.message)
                                       for n in app._notifications), "the unmark")

        # Inspect a URL before adding it.
        await pilot.press("i")
        await pilot.press(*feed, "enter")
        await until(pilot, lambda: "RssHandler" in lines_of(app, "#text-body"),
                    "the inspection")
        assert "a clip" in lines_of(app, "#text-body")
        await pilot.press("escape")
        # A URL the service refuses: its error text, as it wrote it.
        await pilot.press("i", *"ftp://x", "enter")
        await until(pilot, lambda: "url 'ftp://x' must be an http(s) URL."
                    in lines_of(app, "#text-body"), "the refusal")
        await pilot.press("escape")
        assert len(listed) == 1

    drive(app, scenario)


def test_files_view_browses_renames_and_shows_details(service: Server, token: str,
                                                      origin: MediaOrigin) -> None:
    folder = service.download_path / "tui-files"
    folder.mkdir(parents=True)
    clip = origin.path_for(origin.clip_url)
    (folder / "Old name.mp4").write_bytes(clip.read_bytes())
    (folder / "Old name.en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    app = ApplianceApp(ApiClient(Connection(service.url, token=token)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("6")
        await until(pilot, lambda: cell(app, "files-table", "tui-files", "name")
                    == "tui-files/", "the folder listed")
        select(app, "files-table", "tui-files")
        await pilot.press("enter")
        await until(pilot, lambda: cell(app, "files-table", "tui-files/Old name.mp4", "name"),
                    "the file in its folder")
        assert text_of(app, "#files-state").startswith("/tui-files · 2 entries")

        # Details: the ffprobe summary.
        select(app, "files-table", "tui-files/Old name.mp4")
        await pilot.press("i")
        await until(pilot, lambda: "video" in lines_of(app, "#text-body")
                    and "duration" in lines_of(app, "#text-body"), "the ffprobe summary")
        assert "subtitle" in lines_of(app, "#text-body")
        await pilot.press("escape")

        # Rename (a name a URL must escape): on disk, with its sidecar; the listing follows.
        new = "Neu #1 100% ?ü.mp4"
        await pilot.press("r", *["backspace"] * len("Old name.mp4"), *new, "enter")
        await until(pilot, lambda: (folder / new).is_file(), "renamed on disk")
        assert not (folder / "Old name.mp4").exists()
        assert (folder / "Neu #1 100% ?ü.en.srt").is_file()
        await until(pilot, lambda: cell(app, "files-table", f"tui-files/{new}", "name"),
                    "the new name listed")
        select(app, "files-table", f"tui-files/{new}")
        await pilot.press("i")
        await until(pilot, lambda: "video" in lines_of(app, "#text-body"), "its details")
        await pilot.press("escape")

        # Search, a new folder, back up.
        await pilot.press("slash", *"100%", "enter")
        await until(pilot, lambda: "search '100%'" in text_of(app, "#files-state")
                    and cell(app, "files-table", f"tui-files/{new}", "name"), "search")
        await pilot.press("c", *"made here", "enter")
        await until(pilot, lambda: (folder / "made here").is_dir(), "the new folder")
        await pilot.press("backspace")
        await until(pilot, lambda: text_of(app, "#files-state").startswith("/ ·"), "the top")

    drive(app, scenario)


def test_file_actions_are_hidden_when_the_service_refuses_them(
        make_server: Any, origin: MediaOrigin) -> None:
    server = make_server("no-actions")
    app = ApplianceApp(ApiClient(Connection(server.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("6")
        await until(pilot, lambda: "entries" in text_of(app, "#files-state"), "the listing")
        keys = {key for key, b in app.screen.active_bindings.items() if b.binding.show
                and b.enabled}
        assert {"i", "s"} <= keys and not {"r", "m", "d", "c"} & keys

    drive(app, scenario)
