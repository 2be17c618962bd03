"""The API's configuration side in process: what a client reads at start
(``/api/system/configuration``), health and engine figures, pause and resume."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yt_dlp.version
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance import __version__
from appliance.api.system import MAX_FOLDERS, list_folders
from appliance.auth import set_password
from appliance.runtime import Runtime

AppWith = Callable[..., tuple[Runtime, TestClient]]


@pytest.mark.parametrize(("host", "url"), [
    ("[::1]:8081", "ws://[::1]:{port}/ws"),
    ("[fe80::1]", "ws://[fe80::1]:{port}/ws"),
    ("media.lan:8081", "ws://media.lan:{port}/ws"),
    ("192.168.1.20", "ws://192.168.1.20:{port}/ws"),
])
def test_the_websocket_url_is_on_the_host_the_request_came_to(
        client: TestClient, host: str, url: str) -> None:
    websocket = client.simulate_get("/api/system/configuration",
                                    headers={"Host": host}).json["websocket"]
    assert websocket["url"] == url.format(port=websocket["port"])
    assert websocket["path"] == "/ws" and websocket["flasharr_path"] == "/api/ws"


def _tree(root: Path, *paths: str) -> None:
    for path in paths:
        (root / path).mkdir(parents=True)


def test_folders_are_listed_sorted_to_their_depth_hidden_ones_left_out(tmp_path: Path) -> None:
    _tree(tmp_path, "b/two/deep", "a/one", ".hidden/inner", "a/.dot")
    (tmp_path / "a" / "file.mp4").write_bytes(b"")
    assert list_folders(tmp_path, 0) == []
    assert list_folders(tmp_path, 1) == [{"name": "a", "path": "a"}, {"name": "b", "path": "b"}]
    assert list_folders(tmp_path, 2) == [
        {"name": "a", "path": "a"}, {"name": "b", "path": "b"},
        {"name": "one", "path": "a/one"}, {"name": "two", "path": "b/two"}]
    assert {"name": "deep", "path": "b/two/deep"} in list_folders(tmp_path, 3)


def test_folders_stop_at_the_most_a_configuration_lists(tmp_path: Path) -> None:
    _tree(tmp_path, *(f"f{n:04}" for n in range(MAX_FOLDERS + 5)))
    folders = list_folders(tmp_path, 2)
    assert len(folders) == MAX_FOLDERS
    assert folders[-1] == {"name": f"f{MAX_FOLDERS - 1:04}", "path": f"f{MAX_FOLDERS - 1:04}"}


def test_the_configuration_lists_folders_to_the_depth_set(app_with: AppWith) -> None:
    runtime, client = app_with(YTP_FOLDER_DEPTH="1")
    _tree(runtime.settings.download_path, "shows/s1")
    folders = client.simulate_get("/api/system/configuration").json["folders"]
    assert {"name": "shows", "path": "shows"} in folders
    assert not [f for f in folders if f["path"].startswith("shows/")]


def test_health_says_what_a_monitor_checks(client: TestClient, runtime: Runtime) -> None:
    health = client.simulate_get("/api/health")
    assert health.status_code == 200
    body = health.json
    assert (body["status"], body["database"], body["download_folder"]) == ("ok", "ok", "ok")
    assert (body["version"], body["instance_id"]) == (__version__, runtime.instance_id)
    assert isinstance(body["download_path_free_bytes"], int)
    assert body["download_path_free_bytes"] > 0
    assert client.simulate_get("/api/ping").json == {"status": "pong"}


def test_the_configuration_names_what_a_client_needs_at_start(app_with: AppWith) -> None:
    runtime, client = app_with()
    config = client.simulate_get("/api/system/configuration").json
    app = config["app"]
    assert (app["version"], app["app_version"], app["instance_id"]) == (
        __version__, __version__, runtime.instance_id)
    assert (app["auth_enabled"], app["default_preset"]) == (False, "default")
    assert app["ytdlp_version"] == yt_dlp.version.__version__
    assert (config["paused"], config["history_count"], config["queue"]) == (False, 0, [])
    assert config["files"] == runtime.files.status()
    assert config["js_runtime"] is None or config["js_runtime"]["name"] in {"deno", "node"}
    assert [p["name"] for p in config["presets"]] == [
        p["name"] for p in runtime.engine.presets.all()]
    assert config["dl_fields"] == runtime.engine.dl_fields.all()
    client.simulate_post("/api/system/pause")
    assert client.simulate_get("/api/system/configuration").json["paused"] is True
    # A password set with `appliance web passwd` (not in the settings) turns auth on too.
    set_password(runtime.settings.config_path, "s3cret-pass")
    config = client.simulate_get("/api/system/configuration",
                                 headers={"Authorization": "Basic YXBwbGlhbmNlOnMzY3JldC1wYXNz"})
    assert config.status_code == 200, config.text
    assert config.json["app"]["auth_enabled"] is True


_DEFINITION = {"match_url": ["https://example.invalid/*"],
               "parse": {"items": {"type": "css", "expression": "li", "fields": {
                   "url": {"type": "css", "expression": "a::attr(href)"}}}}}


def test_task_definitions_are_listed_without_their_definition_unless_asked(
        client: TestClient) -> None:
    for name in ("first", "second"):
        made = client.simulate_post("/api/tasks/definitions", json={
            "name": name, "definition": _DEFINITION})
        assert made.status_code == 201, made.text
    listed = client.simulate_get("/api/tasks/definitions")
    assert listed.status_code == 200
    assert [i["name"] for i in listed.json["items"]] == ["first", "second"]
    assert all("definition" not in i for i in listed.json["items"])
    assert listed.json["pagination"]["total"] == 2 and listed.headers["Total-Count"] == "2"
    full = client.simulate_get("/api/tasks/definitions",
                               params={"include": "definition", "per_page": 1, "page": 2})
    [second] = full.json["items"]
    assert second["name"] == "second" and second["definition"]["match_url"] == [
        "https://example.invalid/*"]
    assert full.json["pagination"]["has_prev"] is True
    assert full.json["pagination"]["has_next"] is False


def test_url_info_reads_with_the_options_given(client: TestClient, origin: MediaOrigin) -> None:
    bad = client.simulate_get("/api/yt-dlp/url/info",
                              params={"url": origin.clip_url, "args": "--no-such-option"})
    assert bad.status_code == 400
    assert bad.json["error"].startswith("Failed to parse command options for yt-dlp.")
    read = client.simulate_get("/api/yt-dlp/url/info",
                               params={"url": origin.clip_url, "args": "--no-playlist"})
    assert read.status_code == 200, read.text
    assert read.json["_cached"]["cli_args"] == "--no-playlist"


def test_console_endpoints_say_why_they_refuse(client: TestClient) -> None:
    command = client.simulate_post("/api/yt-dlp/command", json={"url": "http://x.invalid/"})
    assert command.status_code == 403
    assert command.json == {"error": "The console is disabled (YTP_CONSOLE_ENABLED=false).",
                            "code": "FORBIDDEN"}
    for body in ({}, {"args": 5}, {"args": ["-f", "best"]}):
        convert = client.simulate_post("/api/yt-dlp/convert", json=body)
        assert convert.status_code == 400, body
        assert convert.json["error"] == "args is required and must be a string."


def test_health_reads_the_database_itself(app_with: AppWith) -> None:
    runtime, client = app_with()
    assert client.simulate_get("/api/health").json["database"] == "ok"  # counts now cached
    database = runtime.settings.database_file
    with contextlib.closing(sqlite3.connect(database)) as db:  # no page left in the log
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database.rename(database.with_name("moved.db"))  # the service's connections keep it
    database.write_bytes(b"this is not a database" * 100)
    runtime.store.release_thread()  # the next request on this thread opens the file anew
    health = client.simulate_get("/api/health")
    assert health.status_code == 503
    assert health.json["status"] == "error"
    # In words, as every read of it says it now (it was SQLite's "file is not a database").
    assert health.json["database"].startswith(
        f"error: The database in {runtime.settings.config_path} could not be read: the file is "
        "not the one the service opened (its disk was unmounted, or the file was moved, "
        "deleted or replaced behind the service). Mount its disk again or put the file back")


def test_executions_are_filtered_by_task_and_status(
        client: TestClient, origin: MediaOrigin) -> None:
    origin.feeds.set("filtered-ok", [])
    origin.feeds.fail("filtered-broken", 500)
    ids = {}
    for name in ("filtered-ok", "filtered-broken"):
        task = client.simulate_post("/api/tasks", json={
            "name": name, "url": f"{origin.base_url}/feeds/{name}.rss", "auto_start": False})
        assert task.status_code == 200, task.text
        ids[name] = task.json["id"]
        client.simulate_post(f"/api/tasks/{ids[name]}/execute")

    def finished() -> list[dict[str, Any]]:
        items = client.simulate_get("/api/executions").json["items"]
        return items if len(items) == 2 and all(
            e["status"] != "running" for e in items) else []

    wait_for(finished, timeout=60, message="both runs to end")

    def listed(**params: Any) -> list[tuple[int, str]]:
        response = client.simulate_get("/api/executions", params=params)
        assert response.status_code == 200, response.text
        return [(e["task_id"], e["status"]) for e in response.json["items"]]

    assert listed(task_id=ids["filtered-ok"]) == [(ids["filtered-ok"], "success")]
    assert listed(task_id=ids["filtered-broken"]) == [(ids["filtered-broken"], "failed")]
    assert listed(status="failed") == [(ids["filtered-broken"], "failed")]
    assert listed(task_id=ids["filtered-ok"], status="failed") == []
    for params in ({"status": "done"}, {"task_id": "0"}, {"task_id": "x"}):
        refused = client.simulate_get("/api/executions", params=params)
        assert refused.status_code == 400, params
        assert next(iter(params)) in refused.json["error"]
    wrong = client.simulate_get("/api/executions", params={"status": "done"})
    assert wrong.json["error"] == "status must be one of running, success, failed, interrupted."


def test_schedules_list_each_enabled_timer_with_its_next_run(client: TestClient) -> None:
    def task(name: str, **fields: Any) -> int:
        made = client.simulate_post("/api/tasks", json={
            "name": name, "url": f"http://127.0.0.1:9/{name}.rss", "auto_start": False,
            **fields})
        assert made.status_code == 200, made.text
        return made.json["id"]

    timed = task("timed", timer="0 3 * * *")
    task("untimed")
    task("disabled", timer="0 4 * * *", enabled=False)
    [schedule] = client.simulate_get("/api/schedules").json["items"]
    assert (schedule["task_id"], schedule["name"], schedule["timer"]) == (
        timed, "timed", "0 3 * * *")
    assert schedule["next_run_at"] > time.time() and schedule["last_run_at"] is None
    assert schedule["running"] is False
