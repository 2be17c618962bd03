"""The history API through falcon.testing, on a real engine (real yt-dlp, real SQLite)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import client_of_module
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.runtime import Runtime
from appliance.store import Item
from appliance.store.records import new_id


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from client_of_module(tmp_path_factory, "refusing")


def post(client: TestClient, path: str, body: Any) -> Any:
    return client.simulate_post(path, body=json.dumps(body),
                                headers={"Content-Type": "application/json"})


def wait_done(client: TestClient, item_id: str, timeout: float = 60) -> dict:
    def done() -> dict | None:
        item = client.simulate_get(f"/api/history/{item_id}").json
        return item if item["kind"] == "done" else None

    return wait_for(done, timeout=timeout, message=f"{item_id} to finish")


def seed_history(runtime: Runtime, n: int, status: str = "finished") -> list[Item]:
    items = [Item(id=new_id(), url=f"http://x.invalid/{i}", kind="done", status=status,
                  title=f"t{i}", created_at=runtime.store.stamp()) for i in range(n)]
    runtime.store.insert(items)
    return items


def test_ping(client: TestClient) -> None:
    response = client.simulate_get("/api/ping")
    assert response.json == {"status": "pong"}
    assert response.headers["API-Version"]


def test_add_downloads_file(client: TestClient, runtime: Runtime, origin: MediaOrigin) -> None:
    response = post(client, "/api/history", {"url": origin.clip_url})
    assert response.status_code == 200
    [queued] = response.json
    assert queued["status"] == "queued"
    item = wait_done(client, queued["id"])
    assert item["status"] == "finished", item
    assert item["_id"] == item["id"] == queued["id"]
    path = runtime.settings.download_path / item["filename"]
    assert path.is_file() and path.stat().st_size == item["file_size"] > 0
    assert path.read_bytes() == origin.path_for(origin.clip_url).read_bytes()
    # the temp folder of the item goes (just after its end is stored)
    wait_for(lambda: not (runtime.settings.temp_path / item["id"]).exists(), timeout=10,
             message="the item's temp folder to go")


def test_add_array_and_folder_and_template(
    client: TestClient, runtime: Runtime, origin: MediaOrigin
) -> None:
    response = post(client, "/api/history", [
        {"url": origin.clip_url, "folder": "a/b", "template": "%(id)s-x.%(ext)s"},
        {"url": origin.clip2_url, "auto_start": False},
    ])
    assert response.status_code == 200
    first, second = response.json
    item = wait_done(client, first["id"])
    assert item["filename"] == "a/b/clip-x.mp4"
    waiting = client.simulate_get(f"/api/history/{second['id']}").json
    assert waiting["kind"] == "queue" and waiting["auto_start"] is False
    assert post(client, "/api/history/start", {"ids": [second["id"]]}).json == {
        second["id"]: "started"}
    assert wait_done(client, second["id"])["status"] == "finished"


def test_playlist_expands_into_batch(client: TestClient, runtime: Runtime,
                                     origin: MediaOrigin) -> None:
    [queued] = post(client, "/api/history", {"url": origin.playlist_url}).json

    def entries() -> list[dict] | None:
        done = client.simulate_get("/api/history?type=done&per_page=50").json["items"]
        return done if len(done) == 3 else None

    items = wait_for(entries, timeout=90, message="3 playlist entries to finish")
    assert {i["status"] for i in items} == {"finished"}
    assert {i["batch_id"] for i in items} == {queued["id"]}
    assert sorted(i["url"] for i in items) == sorted(origin.playlist_entry_urls)
    # the placeholder is gone, replaced by its entries, and so is its temp folder
    assert client.simulate_get(f"/api/history/{queued['id']}").status_code == 404
    assert not (runtime.settings.temp_path / queued["id"]).exists()


def test_failing_url_goes_to_history_as_error(client: TestClient, origin: MediaOrigin) -> None:
    [queued] = post(client, "/api/history", {"url": origin.fail_url}).json
    item = wait_done(client, queued["id"])
    assert item["status"] == "error"
    assert "404" in item["error"]


@pytest.mark.parametrize(("body", "status", "text"), [
    ({}, 400, "url param is required."),
    ({"url": 5}, 400, "url must be a string (the link)."),
    ({"url": "file:///etc/passwd"}, 400, "must be an http(s) URL"),
    ({"url": "http://x.invalid/a\x00b"}, 400, "control characters"),
    ({"url": "http://x.invalid/a b"}, 400, "control characters"),
    ({"url": "http://x.invalid/", "folder": "../etc"}, 400, "inside the download folder"),
    ({"url": "http://x.invalid/", "folder": "/etc"}, 400, "inside the download folder"),
    ({"url": "http://x.invalid/", "folder": "show/" + "n" * 256}, 400,
     "has a name longer than 255 bytes: no file could be written there."),
    ({"url": "http://x.invalid/", "folder": "/".join(["n" * 200] * 21)}, 400,
     "is longer than 4095 bytes"),
    ({"url": "http://x.invalid/", "template": "../../%(title)s"}, 400, "stay inside"),
    ({"url": "http://x.invalid/", "cli": "--bogus"}, 400, "no such option: --bogus"),
    ({"url": "http://x.invalid/", "auto_start": "yes"}, 400, "auto_start"),
    ({"url": "http://x.invalid/", "preset": "nope"}, 400, "Preset 'nope' not found."),
    ([], 400, "At least one item"),
    ("just a string", 400, "JSON object"),
])
def test_add_bad_input(refusing: TestClient, body: Any, status: int, text: str) -> None:
    response = post(refusing, "/api/history", body)
    assert response.status_code == status
    assert text in response.json["error"]
    assert response.json["code"] == "INVALID_REQUEST"


def test_malformed_json_and_content_type_and_size(client: TestClient, runtime: Runtime) -> None:
    bad = client.simulate_post("/api/history", body="{nope",
                               headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "Invalid JSON" in bad.json["error"]
    form = client.simulate_post("/api/history", body="url=x",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415 and form.json["code"] == "UNSUPPORTED_MEDIA_TYPE"
    huge = client.simulate_post("/api/history", body="[" + " " * runtime.settings.max_body + "]",
                                headers={"Content-Type": "application/json"})
    assert huge.status_code == 413 and huge.json["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(("cli", "removed"), [
    ("-xP/tmp/evil", ["--paths"]),  # a blocked option hidden in a short-option cluster
    ("-x -P /tmp", ["--paths"]),
    ("--js-runtimes deno:/bin/sh", ["--js-runtimes"]),  # names a program to run
    ("--exec-before-download 'rm x' --netrc-cmd cat", ["--exec-before-download", "--netrc-cmd"]),
])
def test_unsafe_options_removed_wherever_they_hide(client: TestClient, cli: str,
                                                   removed: list[str]) -> None:
    [queued] = post(client, "/api/history", {"url": "http://127.0.0.1:9/x.mp4", "cli": cli,
                                             "auto_start": False}).json
    assert queued["removed_options"] == removed


def test_cli_removed_options_reported(client: TestClient, origin: MediaOrigin) -> None:
    response = post(client, "/api/history", {
        "url": origin.clip_url, "cli": "--exec 'touch /tmp/pwned' -o /etc/x.%(ext)s",
        "auto_start": False})
    [queued] = response.json
    assert queued["removed_options"] == ["--exec", "--output"]
    item = client.simulate_get(f"/api/history/{queued['id']}").json
    assert "--exec" not in item["cli"] and item["removed_options"] == ["--exec", "--output"]


def test_paginated_history_and_filters(client: TestClient, runtime: Runtime) -> None:
    finished = seed_history(runtime, 7)
    seed_history(runtime, 3, status="error")
    page = client.simulate_get("/api/history?type=done&per_page=4&page=2").json
    assert page["pagination"] == {"page": 2, "per_page": 4, "total": 10, "total_pages": 3,
                                  "has_next": True, "has_prev": True}
    assert len(page["items"]) == 4
    only = client.simulate_get("/api/history?type=done&status=finished&per_page=100").json
    assert only["pagination"]["total"] == 7
    assert {i["status"] for i in only["items"]} == {"finished"}
    without = client.simulate_get("/api/history?type=done&status=!finished").json
    assert {i["status"] for i in without["items"]} == {"error"}
    oldest = client.simulate_get("/api/history?type=done&order=ASC&per_page=1").json
    assert oldest["items"][0]["id"] == finished[0].id
    newest = client.simulate_get("/api/history?type=done&order=desc&per_page=1").json
    assert newest["items"][0]["status"] == "error"
    legacy = client.simulate_get("/api/history").json
    assert set(legacy) == {"queue", "history"} and len(legacy["history"]) == 10


@pytest.mark.parametrize(("query", "text"), [
    ("type=bogus", "type must be one of all, queue, done."),
    ("type=done&page=0", "page must be >= 1."),
    ("type=done&per_page=0", "per_page must be between 1 and 1000."),
    ("type=done&per_page=5000", "per_page must be between 1 and 1000."),
    ("type=done&order=UP", "order must be ASC or DESC."),
    ("type=done&page=x", "page and per_page must be valid integers."),
])
def test_history_query_errors(refusing: TestClient, query: str, text: str) -> None:
    response = refusing.simulate_get(f"/api/history?{query}")
    assert response.status_code == 400
    assert response.json["error"] == text


def test_item_get_update_and_etag(client: TestClient, runtime: Runtime) -> None:
    [item] = seed_history(runtime, 1)
    first = client.simulate_get(f"/api/history/{item.id}")
    assert first.status_code == 200 and first.headers["ETag"]
    again = client.simulate_get(f"/api/history/{item.id}",
                                headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.content
    updated = post(client, f"/api/history/{item.id}", {"title": "My Custom Title"})
    assert updated.status_code == 200 and updated.json["title"] == "My Custom Title"
    same = post(client, f"/api/history/{item.id}", {"title": "My Custom Title"})
    assert same.status_code == 304
    assert post(client, f"/api/history/{item.id}", {}).status_code == 400
    assert post(client, f"/api/history/{item.id}", {"status": "x"}).status_code == 400
    assert post(client, f"/api/history/{item.id}", {"title": 3}).status_code == 400
    assert post(client, f"/api/history/{item.id}", {"folder": "x"}).status_code == 409
    missing = client.simulate_get(f"/api/history/{new_id()}")
    assert missing.status_code == 404 and missing.json == {"error": "Item not found.",
                                                           "code": "NOT_FOUND"}
    assert post(client, f"/api/history/{new_id()}", {"title": "x"}).status_code == 404


def test_delete_by_ids_and_by_status(client: TestClient, runtime: Runtime) -> None:
    finished = seed_history(runtime, 3)
    failed = seed_history(runtime, 2, status="error")
    by_ids = client.simulate_delete("/api/history", json={
        "type": "done", "ids": [finished[0].id, "nope"]})
    assert by_ids.json == {finished[0].id: "deleted", "nope": "not found"}
    of_history = client.simulate_delete("/api/history", json={  # no queue item
        "type": "queue", "ids": [finished[1].id, "nope"]})
    assert of_history.json == {finished[1].id: "not found", "nope": "not found"}
    assert runtime.store.get(finished[1].id) is not None
    by_status = client.simulate_delete("/api/history", json={"type": "done",
                                                             "status": "!finished"})
    assert by_status.json["deleted"] == 2
    assert set(by_status.json["items"]) == {i.id for i in failed}
    assert runtime.store.count("done") == 2
    for mistyped in ("!finsihed", "! finished", "!Finished"):
        refused = client.simulate_delete("/api/history", json={"type": "done",
                                                               "status": mistyped})
        assert refused.status_code == 400 and "would delete every item" in refused.json["error"]
    assert runtime.store.count("done") == 2
    nothing = client.simulate_delete("/api/history", json={"type": "done", "status": "finsihed"})
    assert nothing.json["deleted"] == 0 and runtime.store.count("done") == 2


@pytest.mark.parametrize(("body", "text"), [
    ({"ids": ["x"]}, "type is required."),
    ({"type": "all", "ids": ["x"]}, "type must be 'queue' or 'done'."),
    ({"type": "done"}, "either 'ids' or 'status' filter is required."),
    ({"type": "done", "status": "!"}, "status '!' excludes no status there is, so it would "
     "delete every item; use one of: cancelled, downloading, error, finished, pending, "
     "postprocessing, preparing, skip, or '!' and one of them."),
])
def test_delete_errors(refusing: TestClient, body: dict, text: str) -> None:
    response = refusing.simulate_delete("/api/history", json=body)
    assert response.status_code == 400 and response.json["error"] == text


def test_delete_removes_file_only_when_allowed(
    client: TestClient, runtime: Runtime, origin: MediaOrigin
) -> None:
    [queued] = post(client, "/api/history", {"url": origin.clip_url}).json
    item = wait_done(client, queued["id"])
    path = runtime.settings.download_path / item["filename"]
    client.simulate_delete("/api/history", json={"type": "done", "ids": [item["id"]],
                                                 "remove_file": True})
    # YTP_REMOVE_FILES is false by default: the record goes, the file stays.
    assert path.is_file()


def test_bulk_actions_validate_ids(client: TestClient) -> None:
    for action in ("start", "pause", "cancel"):
        response = post(client, f"/api/history/{action}", {"ids": "x"})
        assert response.status_code == 400
        assert response.json["error"] == "ids is required and must be an array."
        unknown = post(client, f"/api/history/{action}", {"ids": [new_id()]})
        assert unknown.status_code == 404


def test_quick_add(client: TestClient, origin: MediaOrigin) -> None:
    ok = client.simulate_get("/api/history/add", params={"url": origin.clip_url})
    assert ok.status_code == 200 and ok.json["status"] is True
    missing = client.simulate_get("/api/history/add")
    assert missing.status_code == 400
    # the contract's shape, and the API's error and code as every other refusal has
    assert missing.json == {"status": False, "message": "url param is required.",
                            "error": "url param is required.", "code": "INVALID_REQUEST"}
    preset = client.simulate_get("/api/history/add",
                                 params={"url": origin.clip_url, "preset": "nope"})
    assert preset.status_code == 404 and preset.json["status"] is False
    assert preset.json["code"] == "NOT_FOUND" and preset.json["error"] == preset.json["message"]


def test_live_and_configuration(client: TestClient, runtime: Runtime) -> None:
    seed_history(runtime, 2)
    (runtime.settings.download_path / "shows" / "s1").mkdir(parents=True)
    live = client.simulate_get("/api/history/live").json
    assert live["history_count"] == 2 and isinstance(live["queue"], dict)
    config = client.simulate_get("/api/system/configuration").json
    assert config["history_count"] == 2
    assert {"name": "shows", "path": "shows"} in config["folders"]
    assert {"name": "s1", "path": "shows/s1"} in config["folders"]
    assert config["websocket"]["port"] == runtime.settings.websocket_port
    assert "auth_password" not in config["app"]
    names = [p["name"] for p in config["presets"]]
    assert names[0] == "default" and "audio-m4a" in names


def test_system_pause_resume(client: TestClient) -> None:
    assert client.simulate_post("/api/system/resume").status_code == 406
    paused = client.simulate_post("/api/system/pause")
    assert paused.json == {"message": "Non-active downloads have been paused."}
    again = client.simulate_post("/api/system/pause")
    assert again.status_code == 406 and again.json["code"] == "NOT_ACCEPTABLE"
    assert client.simulate_post("/api/system/resume").json == {
        "message": "Resumed all downloads."}


def test_system_pause_holds_queue(client: TestClient, origin: MediaOrigin) -> None:
    client.simulate_post("/api/system/pause")
    [queued] = post(client, "/api/history", {"url": origin.clip_url}).json
    wait_for(lambda: client.simulate_get(f"/api/history/{queued['id']}").json["extractor"],
             message="info extraction")
    item = client.simulate_get(f"/api/history/{queued['id']}").json
    assert item["status"] == "pending" and item["kind"] == "queue"
    client.simulate_post("/api/system/resume")
    assert wait_done(client, queued["id"])["status"] == "finished"


def test_health_and_engine_stats(client: TestClient, runtime: Runtime) -> None:
    seed_history(runtime, 2)
    seed_history(runtime, 1, status="error")
    assert client.simulate_get("/api/health").json["status"] == "ok"
    stats = client.simulate_get("/api/engine/stats").json
    assert stats["completed"] == 2 and stats["failed"] == 1 and stats["cancelled"] == 0
    assert set(stats["db_counts"]) == {"queued", "downloading", "completed", "failed", "paused",
                                       "cancelled", "all"}
    assert stats["db_counts"]["all"] == 3


def test_unknown_route_and_method(client: TestClient) -> None:
    missing = client.simulate_get("/api/does/not/exist")
    assert missing.status_code == 404
    assert missing.json == {"error": "No such endpoint: /api/does/not/exist",
                            "code": "NOT_FOUND"}
    wrong = client.simulate_put("/api/ping")
    assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"]
    assert wrong.json == {"error": "Method PUT is not allowed on /api/ping.",
                          "code": "METHOD_NOT_ALLOWED"}


def test_ytdlp_convert_and_options(client: TestClient) -> None:
    converted = post(client, "/api/yt-dlp/convert", {"args": "--write-sub --exec ls"}).json
    assert converted["opts"]["writesubtitles"] is True
    assert converted["removed_options"] == ["--exec"]
    bad = post(client, "/api/yt-dlp/convert", {"args": "--nope"})
    assert bad.status_code == 400
    assert bad.json["error"].startswith("Failed to parse command options for yt-dlp.")
    assert post(client, "/api/yt-dlp/convert", {"args": 1}).status_code == 400
    options = client.simulate_get("/api/yt-dlp/options").json  # a bare array, as YTPTube's
    flags = {f for o in options for f in o["flags"]}
    assert "--format" in flags


def test_url_info_cache(client: TestClient, runtime: Runtime, origin: MediaOrigin) -> None:
    first = client.simulate_get("/api/yt-dlp/url/info", params={"url": origin.clip_url})
    assert first.status_code == 200, first.text
    assert first.json["_cached"]["status"] == "miss" and first.json["title"] == "clip"
    second = client.simulate_get("/api/yt-dlp/url/info", params={"url": origin.clip_url}).json
    assert second["_cached"]["status"] == "hit"
    assert second["_cached"]["key"] == first.json["_cached"]["key"]
    forced = client.simulate_get("/api/yt-dlp/url/info",
                                 params={"url": origin.clip_url, "force": "true"}).json
    assert forced["_cached"]["status"] == "miss"
    assert client.simulate_get("/api/yt-dlp/url/info").status_code == 400
    assert client.simulate_get("/api/yt-dlp/url/info",
                               params={"url": origin.clip_url, "preset": "x"}).status_code == 404
    failed = client.simulate_get("/api/yt-dlp/url/info", params={"url": origin.fail_url})
    assert failed.status_code == 400 and "404" in failed.json["error"]
    # nothing is left behind in the temp folder
    assert list(runtime.settings.temp_path.iterdir()) == []


def test_base_path_mount(runtime: Runtime) -> None:
    from appliance.api.app import create_app, mount

    client = TestClient(mount(create_app(runtime), "/ytp/"))
    assert client.simulate_get("/ytp/api/ping").json == {"status": "pong"}
    assert client.simulate_get("/api/ping").json == {"status": "pong"}


def test_history_items_carry_their_sidecars_from_the_index(
        client: TestClient, runtime: Runtime, origin: MediaOrigin) -> None:
    [queued] = post(client, "/api/history",
                    {"url": origin.clip_url, "folder": "sides", "template": "show.%(ext)s"}).json
    item = wait_done(client, queued["id"])
    assert item["filename"] == "sides/show.mp4" and item["sidecar"] == {}
    # an item that did not finish has none, whatever lies in the folder; newer, it comes
    # first in the page and the finished one after it still has its own
    [failed] = seed_history(runtime, 1, status="error")
    folder = runtime.settings.download_path / "sides"
    for name in ("show.en.srt", "show.nfo", "show.jpg", "poster.png", "shows.srt",
                 "show2.mp4", "other.en.srt"):
        (folder / name).write_bytes(b"x")
    expected = {
        "subtitle": [{"file": "sides/show.en.srt", "lang": "en", "name": "SRT (0) - en"}],
        "metadata": [{"file": "sides/show.nfo"}],
        "image": [{"file": "sides/poster.png"}, {"file": "sides/show.jpg"}],
    }

    def listed_sidecars() -> dict | None:
        page = client.simulate_get("/api/history", params={"type": "done", "per_page": 100})
        [row] = [i for i in page.json["items"] if i["id"] == item["id"]]
        return row["sidecar"] if row["sidecar"].get("metadata") else None

    # the index sees the new files (watchdog); the page and the item agree
    sidecar = wait_for(listed_sidecars, timeout=10, message="the sidecars in the history page")
    assert {k: sorted(v, key=lambda e: e["file"]) for k, v in sidecar.items()} == expected
    single = client.simulate_get(f"/api/history/{item['id']}").json["sidecar"]
    assert {k: sorted(v, key=lambda e: e["file"]) for k, v in single.items()} == expected
    # a stored name that leads out of the folder (a tampered row) is never looked up
    outside = Item(id=new_id(), url="http://x.invalid/o", kind="done", status="finished",
                   filename="../config/appliance.db", created_at=runtime.store.stamp(),
                   download_folder=str(runtime.settings.download_path))
    runtime.store.insert([outside])
    assert client.simulate_get(f"/api/history/{outside.id}").json["sidecar"] == {}
    assert client.simulate_get(f"/api/history/{failed.id}").json["sidecar"] == {}
