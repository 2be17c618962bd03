"""Tasks in process: the contract's checks and shapes (falcon TestClient on the real runtime),
retention, definitions and feeds. Cron timers and the scheduler: test_task_scheduler.py."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import falcon.testing
import pytest
from conftest import client_of_module

from appliance import events
from appliance.errors import AppError
from appliance.events import Event
from appliance.runtime import Runtime
from appliance.store.records import FINISHED, Item
from appliance.tasks.retention import expired

Client = falcon.testing.TestClient
UNREACHABLE = "http://127.0.0.1:9/feeds/nothing.rss"


@pytest.fixture
def app(app_with: Callable[..., tuple[Runtime, Client]]) -> tuple[Runtime, Client]:
    return app_with(YTP_TASKS_SPREAD="0")


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    yield from client_of_module(tmp_path_factory, "refusing", YTP_TASKS_SPREAD="0")


def post(client: Client, body: Any) -> falcon.testing.Result:
    return client.simulate_post("/api/tasks", json=body)


# --- the contract -------------------------------------------------------------------------


def test_create_one_and_read_it_back(app: tuple[Runtime, Client]) -> None:
    runtime, client = app
    seen: list[Event] = []
    runtime.bus.subscribe(seen.append)
    created = post(client, {"name": "News", "url": UNREACHABLE, "timer": "5 */2 * * *",
                            "preset": "default", "folder": "news", "auto_start": False})
    assert created.status_code == 200, created.text
    task = created.json
    assert {k: task[k] for k in ("name", "timer", "preset", "folder", "auto_start",
                                 "handler_enabled", "enabled")} == {
        "name": "News", "timer": "5 */2 * * *", "preset": "default", "folder": "news",
        "auto_start": False, "handler_enabled": True, "enabled": True}
    assert task["next_run_at"] is not None and task["last_run_at"] is None
    assert client.simulate_get(f"/api/tasks/{task['id']}").json["name"] == "News"
    listed = client.simulate_get("/api/tasks")
    assert listed.headers["Total-Count"] == "1" and listed.json["pagination"]["total"] == 1
    updates = [e.data for e in seen if e.name == events.CONFIG_UPDATE]
    assert updates == [{"feature": "tasks", "action": "create", "data": task}]


def test_array_backfills_infers_names_and_staggers_timers(app: tuple[Runtime, Client]
                                                          ) -> None:
    _, client = app
    created = post(client, [
        {"name": "First", "url": UNREACHABLE, "timer": "50 */2 * * *", "preset": "audio-mp3",
         "folder": "music"},
        {"url": "http://127.0.0.1:9/b"},
        {"url": "http://127.0.0.1:9/c", "folder": "other"},
        {"url": "http://127.0.0.1:9/d", "name": "Named"},
    ])
    assert created.status_code == 200, created.text
    assert [(t["name"], t["timer"], t["preset"], t["folder"]) for t in created.json] == [
        ("First", "50 */2 * * *", "audio-mp3", "music"),
        ("task-2", "55 */2 * * *", "audio-mp3", "music"),
        ("task-3", "0 1-23/2 * * *", "audio-mp3", "other"),
        ("Named", "5 1-23/2 * * *", "audio-mp3", "music"),
    ]
    again = post(client, [{"name": "Again", "url": UNREACHABLE},
                          {"url": "http://127.0.0.1:9/e"}])
    assert [t["timer"] for t in again.json] == ["", ""]  # no timer in the first: none at all
    assert again.json[1]["name"] == "task-2 (2)"


def test_a_value_ytdlp_refuses_in_any_task_of_an_array_creates_none(
        app: tuple[Runtime, Client]) -> None:
    _, client = app
    refused = post(client, [{"name": "First", "url": UNREACHABLE, "cli": "--retries 3"},
                            {"url": "http://127.0.0.1:9/b"},
                            {"url": "http://127.0.0.1:9/c", "cli": "--retries lots"}])
    assert refused.status_code == 400 and refused.json["code"] == "INVALID_REQUEST"
    assert refused.json["error"] == ("Failed to parse command options for yt-dlp. "
                                     "'invalid download retry count \"lots\" given'.")
    assert client.simulate_get("/api/tasks").json["pagination"]["total"] == 0
    created = post(client, {"name": "Kept", "url": UNREACHABLE, "cli": "--retries 3"})
    assert created.status_code == 200 and created.json["cli"] == "--retries 3"
    put = client.simulate_put(f"/api/tasks/{created.json['id']}",
                              json={**created.json, "cli": "--limit-rate x"})
    assert put.status_code == 400
    assert put.json["error"].endswith("'invalid rate limit \"x\" given'.")


def test_duplicate_name_is_409_and_nothing_is_created(app: tuple[Runtime, Client]) -> None:
    _, client = app
    assert post(client, {"name": "One", "url": UNREACHABLE}).status_code == 200
    clash = post(client, [{"name": "Two", "url": UNREACHABLE},
                          {"url": UNREACHABLE, "name": "One"}])
    assert clash.status_code == 409 and clash.json["code"] == "CONFLICT"
    assert client.simulate_get("/api/tasks").json["pagination"]["total"] == 1
    second = post(client, {"name": "Other", "url": UNREACHABLE}).json
    renamed = client.simulate_patch(f"/api/tasks/{second['id']}", json={"name": "One"})
    assert renamed.status_code == 409


@pytest.mark.parametrize(("fields", "says"), [
    ({"timer": "61 * * * *"}, "timer"),
    ({"timer": "* * * *"}, "5 fields"),
    ({"timer": "0 0 * * * *"}, "5 fields"),
    ({"preset": "no-such-preset"}, "Preset"),
    ({"folder": ".."}, "inside the download folder"),
    ({"folder": "../elsewhere"}, "inside the download folder"),
    ({"folder": "/etc"}, "inside the download folder"),
    ({"folder": "~/x"}, "inside the download folder"),
    ({"template": "../%(title)s.%(ext)s"}, "template"),
    ({"template": "/tmp/%(title)s.%(ext)s"}, "template"),
    ({"template": "~/%(title)s.%(ext)s"}, "template"),
    ({"template": "%(playlist|)s/%(title)s.%(ext)s"}, "first fields are empty"),
    ({"name": ".."}, "plain name"),
    ({"name": "a/b"}, "plain name"),
    ({"name": "line\nbreak"}, "plain name"),
    ({"cli": "--exec 'rm -rf /'"}, "not allowed"),
    ({"cli": "--download-archive x.txt"}, "not allowed"),
    ({"cli": "-o /etc/%(title)s"}, "not allowed"),
    ({"cli": "--no-such-option"}, "no such option"),
    ({"url": "file:///etc/passwd"}, "http(s)"),
    ({"url": ""}, "url"),
    ({"cookies": "not a cookie file"}, "Netscape"),
    ({"cookies": "#" * (1024 * 1024 + 1)}, "cookies are larger than 1 MiB."),
    ({"published_after": "yesterday"}, "published_after"),
    ({"keep_newest": -1}, "keep_newest"),
    ({"enabled": "yes"}, "enabled"),
    ({"config": []}, "config must be an object."),
    ({"surprise": 1}, "Unknown task field"),
])
def test_bad_fields_are_400_with_a_clear_error(refusing: Client, fields: dict[str, Any],
                                              says: str) -> None:
    client = refusing
    response = post(client, {"name": "bad", "url": UNREACHABLE, **fields})
    assert response.status_code == 400, response.text
    assert response.json["code"] == "INVALID_REQUEST" and says in response.json["error"]
    assert client.simulate_get("/api/tasks").json["pagination"]["total"] == 0


def test_a_dollar_folder_stays_a_plain_folder_inside(app: tuple[Runtime, Client]) -> None:
    runtime, client = app
    task = post(client, {"name": "dollar", "url": UNREACHABLE, "folder": "$HOME/x",
                         "template": "$HOME/%(title)s.%(ext)s"})
    assert task.status_code == 200, task.text
    from appliance.engine.options import resolve_folder
    home = resolve_folder(runtime.settings.download_path, task.json["folder"])
    assert home.is_relative_to(runtime.settings.download_path) and "$HOME" in home.parts


def test_put_patch_delete_and_404(app: tuple[Runtime, Client]) -> None:
    _, client = app
    task = post(client, {"name": "P", "url": UNREACHABLE, "timer": "0 1 * * *"}).json
    patched = client.simulate_patch(f"/api/tasks/{task['id']}",
                                    json={"enabled": False, "timer": "0 */6 * * *"}).json
    assert (patched["enabled"], patched["timer"], patched["next_run_at"]) == (
        False, "0 */6 * * *", None)
    replaced = client.simulate_put(f"/api/tasks/{task['id']}",
                                   json={**patched, "name": "Q", "url": UNREACHABLE})
    assert replaced.status_code == 200 and replaced.json["name"] == "Q"
    assert replaced.json["enabled"] is False  # sent back as read: read-only fields ignored
    for method in ("PATCH", "PUT"):  # marking is creating's, or the mark endpoint's
        marking = client.simulate_request(method, f"/api/tasks/{task['id']}",
                                          json={**replaced.json, "mark": True})
        assert marking.status_code == 400
        assert f"POST /api/tasks/{task['id']}/mark" in marking.json["error"]
    assert client.simulate_delete(f"/api/tasks/{task['id']}").json["name"] == "Q"
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = client.simulate_request(method, f"/api/tasks/{task['id']}",
                                           json={"name": "x", "url": UNREACHABLE})
        assert response.status_code == 404 and response.json["code"] == "NOT_FOUND"
        assert response.json["error"] == "Task not found."
    assert client.simulate_post("/api/tasks/999/mark").status_code == 404
    assert client.simulate_post("/api/tasks/999/execute").status_code == 404


def test_inspect(app: tuple[Runtime, Client]) -> None:
    _, client = app
    static = client.simulate_post("/api/tasks/inspect",
                                  json={"url": UNREACHABLE, "static_only": True})
    assert static.json == {"items": [], "metadata": {"matched": True,
                                                     "handler": "RssHandler"}}
    youtube = client.simulate_post("/api/tasks/inspect", json={
        "url": "https://www.youtube.com/@someone", "static_only": True})
    assert youtube.json["metadata"]["handler"] == "YoutubeHandler"
    failed = client.simulate_post("/api/tasks/inspect", json={"url": UNREACHABLE})
    assert failed.status_code == 400
    assert failed.json["matched"] is True and failed.json["message"] == failed.json["error"]
    assert (failed.json["handler"], failed.json["metadata"]) == ("RssHandler",
                                                                 {"supported": True})
    unknown = client.simulate_post("/api/tasks/inspect", json={"url": UNREACHABLE,
                                                               "preset": "no-such-preset"})
    assert unknown.status_code == 400 and "no-such-preset" in unknown.json["error"]
    wrong = client.simulate_post("/api/tasks/inspect", json={
        "url": UNREACHABLE, "handler": "NoSuchHandler"})
    assert wrong.status_code == 400 and wrong.json["matched"] is False
    # a string is not a switch: "false" must not mean a (slow) full inspection, nor "maybe"
    # a static one
    for value in ("maybe", "false", 1):
        odd = client.simulate_post("/api/tasks/inspect", json={
            "url": UNREACHABLE, "static_only": value})
        assert odd.status_code == 400
        assert odd.json["error"] == "static_only must be true or false."
    explicit = client.simulate_post("/api/tasks/inspect", json={
        "url": UNREACHABLE, "static_only": None})
    assert explicit.status_code == 400 and explicit.json["matched"] is True  # full: fetched


def test_execute_answers_as_the_run_starts_and_the_run_goes_on(
        app: tuple[Runtime, Client], origin: Any) -> None:
    """POST .../execute answers once the execution is recorded, while the feed is still
    being read; the run then ends on its own and its items are listed newest first."""
    from support.feeds import FeedEntry
    from support.server import wait_for

    _, client = app
    origin.feeds.set("started", [FeedEntry("a", f"{origin.clip_url}?n=1"),
                                 FeedEntry("b", f"{origin.clip_url}?n=2")])
    task = post(client, {"name": "Started", "url": f"{origin.base_url}/feeds/started.rss",
                         "auto_start": False}).json
    gate = origin.feeds.hold("started")
    try:
        started = client.simulate_post(f"/api/tasks/{task['id']}/execute")
        assert started.status_code == 202, started.text
        assert (started.json["task_id"], started.json["status"]) == (task["id"], "running")
        assert client.simulate_get(f"/api/tasks/{task['id']}").json["running"] is True
    finally:
        gate.set()
    done = wait_for(lambda: (e := client.simulate_get(
        f"/api/executions/{started.json['id']}").json)["status"] != "running" and e,
        timeout=30, message="the run to end")
    assert (done["status"], done["queued"]) == ("success", 2)
    lines = client.simulate_get(f"/api/executions/{done['id']}/log").json["lines"]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO task 'Started': ", lines[0])
    assert any("found 2 entries" in x for x in lines) and any("queued 2" in x for x in lines)
    preview = client.simulate_post("/api/tasks/inspect", json={"url": task["url"]}).json
    assert [i["url"] for i in preview["items"]] == [f"{origin.clip_url}?n=1",
                                                    f"{origin.clip_url}?n=2"]
    assert preview["metadata"] == {"raw_count": 2, "title": "Feed started"}
    page = client.simulate_get(f"/api/tasks/{task['id']}/items",
                               params={"per_page": 1, "page": 2})
    assert page.json["pagination"]["total"] == 2
    assert [i["url"] for i in page.json["items"]] == [f"{origin.clip_url}?n=1"]
    whole = client.simulate_get(f"/api/tasks/{task['id']}/items")  # the default page size
    assert whole.status_code == 200 and whole.json["pagination"]["per_page"] == 50
    assert [i["url"] for i in whole.json["items"]] == [f"{origin.clip_url}?n=2",
                                                       f"{origin.clip_url}?n=1"]


def test_failure_streak_is_told_once(app: tuple[Runtime, Client]) -> None:
    runtime, client = app
    told: list[Event] = []
    runtime.bus.subscribe(lambda e: told.append(e) if e.name == events.LOG_ERROR else None)
    task = post(client, {"name": "Flaky", "url": UNREACHABLE}).json
    for _ in range(3):
        execution = runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
        assert execution["status"] == "failed" and "could not read" in execution["error"]
        # told at the first failure of the streak, not later
        assert [e.data["title"] for e in told if "Flaky" in e.data["title"]] == [
            "Task Flaky failed"]
    assert runtime.tasks.get(task["id"])["failures"] == 3


def test_executions_are_kept_bounded(app_with: Callable[..., tuple[Runtime, Client]]
                                     ) -> None:
    runtime, client = app_with(YTP_EXECUTIONS_KEPT="10")
    task = post(client, {"name": "Many", "url": UNREACHABLE}).json
    for _ in range(14):
        runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
    runtime.tasks.prune()
    listed = client.simulate_get("/api/executions", params={"per_page": 100})
    assert listed.json["pagination"]["total"] == 10
    assert listed.json["items"][0]["id"] > listed.json["items"][-1]["id"]  # newest first
    assert client.simulate_get("/api/executions/1").status_code == 404


def test_a_task_never_runs_twice_at_once(app: tuple[Runtime, Client]) -> None:
    runtime, client = app
    task = post(client, {"name": "Once", "url": UNREACHABLE}).json
    with runtime.tasks.runner.claim(task["id"]):
        busy = client.simulate_post(f"/api/tasks/{task['id']}/execute")
        assert busy.status_code == 409 and busy.json["code"] == "CONFLICT"
        assert client.simulate_post(f"/api/tasks/{task['id']}/mark").status_code == 409
        with pytest.raises(AppError):
            runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "timer")
    assert client.simulate_get("/api/executions").json["pagination"]["total"] == 0


# --- retention ----------------------------------------------------------------------------


def test_retention_keeps_newest_and_recent() -> None:
    now = 1_000_000.0
    items = [Item(id=str(n), url=f"u{n}", status=FINISHED, filename=f"f{n}",
                  finished_at=now - n * 86400) for n in range(5)]
    assert sorted(i.id for i in expired(items, 2, 0, now)) == ["2", "3", "4"]
    assert sorted(i.id for i in expired(items, 0, 3, now)) == ["4"]
    assert expired(items, 0, 0, now) == []


def test_settings_refuse_an_unknown_time_zone(tmp_path: Path) -> None:
    from conftest import make_settings

    from appliance.config import SettingsError
    with pytest.raises(SettingsError, match="time zone"):
        make_settings(tmp_path, YTP_TASKS_TIMEZONE="Mars/Olympus")
    assert make_settings(tmp_path, YTP_TASKS_TIMEZONE="Europe/Berlin").tasks_timezone


# --- task definitions ---------------------------------------------------------------------

_GOOD = {"match_url": ["https://example.invalid/*"],
         "parse": {"items": {"type": "css", "expression": "li", "fields": {
             "url": {"type": "css", "expression": "a::attr(href)"}}}}}


@pytest.mark.parametrize(("definition", "says"), [
    ({**_GOOD, "engine": {"type": "selenium"}}, "engine.type: the 'selenium' engine"),
    ({**_GOOD, "parse": {"items": {**_GOOD["parse"]["items"], "expression": "li[[["}}},
     "definition.parse.items.expression"),
    ({**_GOOD, "parse": {"items": {**_GOOD["parse"]["items"], "fields": {
        "url": {"type": "xpath", "expression": "//a[@"}}}}},
     "definition.parse.items.fields.url.expression"),
    ({**_GOOD, "parse": {"items": {**_GOOD["parse"]["items"], "fields": {
        "url": {"type": "regex", "expression": "(a"}}}}}, "fields.url.expression"),
    ({**_GOOD, "parse": {"items": {**_GOOD["parse"]["items"], "fields": {
        "title": {"type": "css", "expression": "h2"}}}}}, "'url' is a required property"),
    ({**_GOOD, "match_url": []}, "definition.match_url"),
    ({**_GOOD, "request": {"method": "DELETE"}}, "definition.request.method"),
    ({**_GOOD, "response": {"type": "json"}}, "jsonpath reads json"),
    ({**_GOOD, "response": {"type": "json"}, "parse": {"items": {
        "type": "jsonpath", "expression": "$.items[*]", "fields": {
            "url": {"type": "css", "expression": "a::attr(href)"}}}}},
     "fields.url.type: css does not read json"),
    ({**_GOOD, "parse": {"items": {**_GOOD["parse"]["items"], "fields": {"url": {
        "type": "css", "expression": "a::attr(href)", "post_filter": "(a"}}}}},
     "definition.parse.items.fields.url.post_filter"),
    ({**_GOOD, "match_url": ["regex:(a"]}, "definition.match_url[0]"),
    # two errors: the one nearest the top is named
    ({**_GOOD, "match_url": [], "request": {"method": "DELETE"}}, "definition.match_url:"),
])
def test_broken_definitions_are_refused_with_their_path(
        refusing: Client, definition: dict[str, Any], says: str) -> None:
    response = refusing.simulate_post("/api/tasks/definitions",
                                      json={"name": "d", "definition": definition})
    assert response.status_code == 400, response.text
    assert says in response.json["error"] and response.json["code"] == "INVALID_REQUEST"


def test_definition_crud(app: tuple[Runtime, Client]) -> None:
    runtime, client = app
    seen: list[Event] = []
    runtime.bus.subscribe(seen.append)
    made = client.simulate_post("/api/tasks/definitions", json={"name": "d",
                                                                "definition": _GOOD})
    assert made.status_code == 201
    record = made.json
    patched = client.simulate_patch(f"/api/tasks/definitions/{record['id']}",
                                    json={"enabled": False})
    assert patched.json["enabled"] is False
    inspect = client.simulate_post("/api/tasks/inspect", json={
        "url": "https://example.invalid/x", "static_only": True})
    assert inspect.json["metadata"]["handler"] == "GenericTaskHandler"  # disabled: not used
    client.simulate_patch(f"/api/tasks/definitions/{record['id']}", json={"enabled": True})
    inspect = client.simulate_post("/api/tasks/inspect", json={
        "url": "https://example.invalid/x", "static_only": True})
    assert inspect.json["metadata"]["handler"] == "DefinitionHandler"
    assert client.simulate_delete(f"/api/tasks/definitions/{record['id']}").status_code == 200
    assert client.simulate_get(f"/api/tasks/definitions/{record['id']}").status_code == 404
    features = {e.data["feature"] for e in seen if e.name == events.CONFIG_UPDATE}
    assert features == {"task_definitions"}



def test_a_definition_whose_match_url_backtracks_is_named_on_every_path(
        app: tuple[Runtime, Client]) -> None:
    """A ``regex:`` pattern that backtracks past its bound on a task's URL is that
    definition's error, named, wherever the URL is matched: inspect answered 500, creating
    a task whose name was to be inferred too, and a run failed with "internal error:
    PatternTimeout"."""
    runtime, client = app
    slow = client.simulate_post("/api/tasks/definitions", json={
        "name": "slow", "definition": {**_GOOD, "match_url": ["regex:(a|a)+b"]}}).json
    url = "https://example.invalid/" + "a" * 40 + "!"
    said = "task definition 'slow': match_url: the regular expression"
    inspect = client.simulate_post("/api/tasks/inspect", json={"url": url, "static_only": True})
    assert inspect.status_code == 400, inspect.text
    assert said in inspect.json["error"] and "took longer than" in inspect.json["error"]
    assert inspect.json["matched"] is False and inspect.json["handler"] is None
    assert inspect.json["metadata"] == {"supported": False}
    created = post(client, [{"name": "First", "url": UNREACHABLE}, {"url": url}])
    assert created.status_code == 200, created.text
    task = created.json[1]
    assert task["name"] == "task-2"  # its name not inferred, as for any URL that fails
    execution = runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
    assert execution["status"] == "failed" and said in execution["error"], execution
    mark = client.simulate_post(f"/api/tasks/{task['id']}/mark")
    assert mark.status_code == 400 and said in mark.json["error"], mark.text
    # disabled, as the error suggests, it is not consulted: the URL goes to yt-dlp
    client.simulate_patch(f"/api/tasks/definitions/{slow['id']}", json={"enabled": False})
    inspect = client.simulate_post("/api/tasks/inspect", json={"url": url, "static_only": True})
    assert inspect.json["metadata"]["handler"] == "GenericTaskHandler"


# --- retention, for real ------------------------------------------------------------------


def test_retention_deletes_only_the_tasks_older_files(
        app_with: Callable[..., tuple[Runtime, Client]], origin: Any) -> None:
    from support.feeds import FeedEntry
    from support.server import wait_for

    runtime, client = app_with(YTP_REMOVE_FILES="true", YTP_TASKS_SPREAD="0")
    downloads = runtime.settings.download_path
    mine = downloads / "kept" / "mine.txt"  # not the task's: never touched
    mine.parent.mkdir(parents=True)
    mine.write_text("keep me")
    origin.feeds.set("retained", [FeedEntry("clip2", origin.clip2_url, "older")])
    task = post(client, {"name": "Retained", "url": f"{origin.base_url}/feeds/retained.rss",
                         "folder": "kept", "keep_newest": 1}).json

    def finished(count: int) -> list[Item]:
        items = runtime.tasks.items(task["id"], 0, 10)[0]
        done = [i for i in items if i.status == FINISHED]
        return done if len(done) == count else []

    assert runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")["queued"] == 1
    older = wait_for(lambda: finished(1), timeout=60, message="the first download")[0]
    origin.feeds.add("retained", FeedEntry("clip", origin.clip_url, "newer"))
    assert runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")["queued"] == 1
    wait_for(lambda: finished(2), timeout=60, message="the second download")
    third = runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
    assert third["queued"] == 0  # the removed entry stays done: never downloaded again
    left = runtime.tasks.items(task["id"], 0, 10)[0]
    assert len(left) == 1 and left[0].id != older.id
    assert older.filename and not (Path(older.download_folder) / older.filename).exists()
    assert (Path(left[0].download_folder) / left[0].filename).is_file()
    assert mine.read_text() == "keep me"


def test_retention_leaves_a_file_another_download_also_has(
        app_with: Callable[..., tuple[Runtime, Client]], origin: Any) -> None:
    """The task's entry was the clip a person had downloaded by hand into the same folder:
    yt-dlp found the file there and the task's item records it too. Retention removed the
    task's item and, with it, the person's file, which their own item still listed."""
    from support.feeds import FeedEntry
    from support.server import wait_for

    runtime, client = app_with(YTP_REMOVE_FILES="true", YTP_TASKS_SPREAD="0")
    shared = runtime.settings.download_path / "shared"

    def finished(count: int) -> list[Item]:
        done = [i for i in runtime.engine.store.history(50) if i.status == FINISHED]
        return done if len(done) == count else []

    by_hand = client.simulate_post("/api/history", json={"url": origin.clip_url,
                                                         "folder": "shared"})
    assert by_hand.status_code == 200, by_hand.text
    mine = wait_for(lambda: finished(1), timeout=60, message="the download by hand")[0]
    origin.feeds.set("shared", [FeedEntry("clip", f"{origin.clip_url}?from=feed", "same")])
    task = post(client, {"name": "Shared", "url": f"{origin.base_url}/feeds/shared.rss",
                         "folder": "shared", "keep_newest": 1}).json
    assert runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")["queued"] == 1
    wait_for(lambda: finished(2), timeout=60, message="the task's download")
    theirs = runtime.tasks.items(task["id"], 0, 10)[0][0]
    assert (theirs.download_folder, theirs.filename) == (mine.download_folder, mine.filename)
    origin.feeds.add("shared", FeedEntry("clip2", origin.clip2_url, "newer"))
    assert runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")["queued"] == 1
    wait_for(lambda: finished(3), timeout=60, message="the task's second download")
    runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
    left = runtime.tasks.items(task["id"], 0, 10)[0]
    assert [i.id for i in left] != [theirs.id] and len(left) == 1  # the rule still applied
    assert (Path(mine.download_folder) / mine.filename).is_file()
    assert runtime.engine.store.get(mine.id) is not None
    assert sorted(p.name for p in shared.iterdir()) == ["clip.mp4", "clip2.mp4"]


def test_mark_must_be_a_boolean(app: tuple[Runtime, Client]) -> None:
    _, client = app
    response = post(client, {"name": "m", "url": UNREACHABLE, "mark": "yes"})
    assert response.status_code == 400 and "mark must be true or false" in response.json["error"]
    failed = post(client, {"name": "m", "url": UNREACHABLE, "mark": True})
    assert failed.status_code == 400 and "Could not list" in failed.json["error"]
    assert client.simulate_get("/api/tasks").json["pagination"]["total"] == 0


# --- reading feeds ------------------------------------------------------------------------

_RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Pod</title>
<item><title>One</title><link>https://site.invalid/1</link>
<enclosure url="https://cdn.invalid/1.mp3" type="audio/mpeg" length="1"/>
<pubDate>Tue, 02 Jan 2024 10:00:00 +0000</pubDate></item>
<item><title>Two</title><link>https://site.invalid/2</link></item></channel></rss>"""


def test_feeds_fast_and_slow_paths_agree() -> None:
    from appliance.tasks import feeds

    fast = feeds.read_feed(_RSS)
    slow = feeds._slow(_RSS)
    assert fast == slow
    assert fast.title == "Pod" and fast.items[0].enclosures == [
        ("https://cdn.invalid/1.mp3", "audio/mpeg")]
    assert fast.items[0].published == datetime(2024, 1, 2, 10, tzinfo=ZoneInfo("UTC")
                                               ).timestamp()


def test_feeds_that_lxml_refuses_go_to_feedparser() -> None:
    from appliance.tasks import feeds

    rdf = b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
    xmlns="http://purl.org/rss/1.0/"><channel><title>Old</title></channel>
    <item><title>A</title><link>https://site.invalid/a</link></item></rdf:RDF>"""
    assert [i.link for i in feeds.read_feed(rdf).items] == ["https://site.invalid/a"]
    broken = _RSS.replace(b"<title>One</title>", b"<title>Fish & Chips</title>")
    assert [i.title for i in feeds.read_feed(broken).items] == ["Fish & Chips", "Two"]
    with pytest.raises(feeds.NotAFeed):
        feeds.read_feed(b"\x00\x01 junk <<<")


def test_feed_entities_are_never_loaded(tmp_path: Path) -> None:
    from appliance.tasks import feeds

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    hostile = (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
               f"<rss><channel><title>&x;</title><item><title>&x;</title>"
               f"<link>https://site.invalid/1</link></item></channel></rss>").encode()
    feed = feeds.read_feed(hostile)
    assert "TOP SECRET" not in feed.title + "".join(i.title for i in feed.items)


def test_dispatch_reaches_notification_targets(
        app_with: Callable[..., tuple[Runtime, Client]], origin: Any) -> None:
    from support.feeds import FeedEntry
    from support.server import wait_for
    from test_notify import Receiver, event_of

    receiver = Receiver()
    try:
        runtime, client = app_with(YTP_TASKS_SPREAD="0")
        made = client.simulate_post("/api/notifications", json={
            "name": "hook", "on": ["task_dispatched"],
            "request": {"url": receiver.url("/hook")}})
        assert made.status_code == 200, made.text
        origin.feeds.set("notified", [FeedEntry("clip", origin.watch_url("clip"))])
        task = post(client, {"name": "Told", "auto_start": False,
                             "url": f"{origin.base_url}/feeds/notified.rss"}).json
        runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
        hit = wait_for(lambda: receiver.to("/hook"), timeout=30, message="the webhook")[0]
        sent = event_of(hit)
        assert sent["event"] == "task_dispatched" and "Told" in sent["title"]
        assert (sent["data"]["queued"], sent["data"]["name"], sent["data"]["task_id"]) == (
            1, "Told", task["id"])
    finally:
        receiver.close()


def test_a_preset_in_use_is_neither_deleted_nor_renamed(app: tuple[Runtime, Client]) -> None:
    """Deleted, a condition choosing it fell back to the default preset without a word and a
    task naming it failed every run ("Preset 'x' not found."); renamed, the same."""
    _, client = app
    preset = client.simulate_post("/api/presets", json={"name": "shows"}).json
    condition = client.simulate_post("/api/conditions", json={
        "name": "cats", "filter": "title~='cat'", "extras": {"preset": "shows"}}).json
    task = post(client, {"name": "Channel", "url": UNREACHABLE, "preset": "shows"}).json
    for action, answer in (
            ("deleted", client.simulate_delete(f"/api/presets/{preset['id']}")),
            ("renamed", client.simulate_patch(f"/api/presets/{preset['id']}",
                                              json={"name": "series"}))):
        assert answer.status_code == 409, answer.text
        assert answer.json["error"] == (f"Preset 'shows' cannot be {action}: condition 'cats', "
                                        "task 'Channel' use it. Give them another preset "
                                        "first.")
    assert client.simulate_patch(f"/api/presets/{preset['id']}",
                                 json={"folder": "shows"}).status_code == 200
    client.simulate_patch(f"/api/tasks/{task['id']}", json={"preset": ""})
    client.simulate_delete(f"/api/conditions/{condition['id']}")
    assert client.simulate_delete(f"/api/presets/{preset['id']}").status_code == 200
