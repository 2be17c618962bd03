"""The wire format real clients read (issue 11): YTPTube's ``/ws`` frames through a real
download on the real service, the contract's own request examples sent as written, the
fields YTPTube's web UI reads, and today's Flasharr additions on the real engine.

Every expected value is written out here as the client would read it."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from falcon.testing import TestClient
from pony import orm
from support.origin import MediaOrigin
from support.server import Server, wait_for
from test_e2e import Feed

from appliance.runtime import Runtime
from appliance.store.database import open_database

Start = Callable[..., tuple[Runtime, TestClient]]
README = Path(__file__).resolve().parents[1] / "README.md"


def send(client: TestClient, method: str, path: str, body: Any) -> Any:
    return client.simulate_request(method, path, body=json.dumps(body),
                                   headers={"Content-Type": "application/json"})


def finished(runtime: Runtime, item_id: str, timeout: float = 90) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        item = runtime.engine.get(item_id)
        return item.to_dict() if item is not None and item.kind == "done" else None

    return wait_for(done, timeout=timeout, message=f"item {item_id} to finish")


# --- YTPTube's /ws frames through a real download -----------------------------------------


def check_event_object(frame: dict[str, Any]) -> None:
    """``{"event": name, "data": Event}``, Event = ``{id, created_at, event, title, message,
    data}``, as YTPTube's Events.py serializes it."""
    event = frame["event_object"]
    assert set(event) == {"id", "created_at", "event", "title", "message", "data"}
    assert event["event"] == frame["event"]
    assert uuid.UUID(event["id"])
    assert datetime.fromisoformat(event["created_at"]).utcoffset() is not None
    assert event["title"] is None or isinstance(event["title"], str)
    assert event["message"] is None or isinstance(event["message"], str)


def check_item(item: dict[str, Any], item_id: str) -> None:
    """The fields YTPTube's web UI reads from an item, with YTPTube's types."""
    assert item["_id"] == item["id"] == item_id
    assert isinstance(item["title"], str) and isinstance(item["url"], str)
    assert isinstance(item["timestamp"], int)  # nanoseconds, as YTPTube's time.time_ns()
    assert abs(item["timestamp"] / 1e9 - item["created_at"]) < 1e-3
    assert parsedate_to_datetime(item["datetime"]).timestamp() == int(item["created_at"])
    for name in ("speed", "eta", "percent"):
        value = item[name]
        assert value is None or (isinstance(value, int | float) and not isinstance(value, bool))


@pytest.mark.e2e
def test_ytptube_frames_and_item_fields_through_a_real_download(
        make_server: Callable[..., Server], origin: MediaOrigin) -> None:
    server = make_server()
    feed = Feed(server.ws_url)
    try:
        connected = feed.connected
        assert connected["event"] == "connected" and isinstance(connected["data"]["sid"], str)

        # a preset as YTPTube's own UI posts it: priority and fields of its objects
        body = {"name": "from-ui", "description": "", "folder": "", "template": "",
                "cookies": "", "cli": "", "default": False, "priority": 3,
                "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}
        created = server.post("/api/presets", body)
        assert created.status_code == 200, created.text
        assert created.json()["priority"] == 3
        update = feed.until(lambda e: e["event"] == "config_update")
        assert (update["data"]["feature"], update["data"]["action"]) == ("presets", "create")
        assert update["data"]["data"]["priority"] == 3

        server.post("/api/system/pause")
        paused = feed.until(lambda e: e["event"] == "paused")
        server.post("/api/system/resume")
        resumed = feed.until(lambda e: e["event"] == "resumed")
        assert (paused["data"]["paused"], resumed["data"]["paused"]) == (True, False)

        url = origin.slow_url_at(2_000_000)
        [queued] = server.post("/api/history", {"url": url, "preset": "from-ui"}).json()
        item_id = queued["id"]
        added = feed.until(lambda e: e["event"] == "item_added")
        check_item(added["data"], item_id)
        done = feed.until(lambda e: e["event"] == "item_completed", timeout=90)
        check_item(done["data"], item_id)
        assert done["data"]["status"] == "finished" and done["data"]["percent"] == 100.0
        moved = feed.until(lambda e: e["event"] == "item_moved")
        assert set(moved["data"]) == {"to", "item"} and moved["data"]["to"] == "history"
        check_item(moved["data"]["item"], item_id)
        success = feed.until(lambda e: e["event"] == "log_success")
        assert success["event_object"]["title"] == "Download completed"
        assert success["event_object"]["message"] == success["data"]["message"]

        # every update carries the whole item (the UI replaces its row with it), progress
        # with yt-dlp's numbers: bytes/s and seconds
        updates = [e["data"] for e in feed.events if e["event"] == "item_updated"]
        for item in updates:
            check_item(item, item_id)
            assert item["url"] == url and item["preset"] == "from-ui"
        assert any(isinstance(i["speed"], float) and i["speed"] > 0
                   and isinstance(i["eta"], int | float) for i in updates), updates
        # a reply to a client's message is a frame like any other
        feed.ws.send("not json")
        error = feed.until(lambda e: e["event"] == "log_error")
        assert error["event_object"]["title"] == "Invalid message"
        for frame in feed.events:
            check_event_object(frame)
    finally:
        feed.close()


# --- the contract's own examples, as written ----------------------------------------------


def test_contract_download_field_example_names_a_metadata_field(
        client: TestClient, runtime: Runtime, origin: MediaOrigin) -> None:
    example = {"name": "Title", "description": "...", "field": "title", "kind": "text",
               "order": 0, "value": "", "icon": "fa-solid fa-tag", "extras": {}}
    response = send(client, "POST", "/api/dl_fields", example)
    assert response.status_code == 200, response.text
    assert {k: response.json[k] for k in example} == example
    for bad, reason in (({**example, "name": "b", "kind": "bool"}, "cannot be bool"),
                        ({**example, "name": "c", "field": "../x"}, "neither"),
                        ({**example, "name": "d", "field": "--exec"}, "not allowed")):
        refused = send(client, "POST", "/api/dl_fields", bad)
        assert refused.status_code == 400 and reason in refused.json["error"], refused.text
    # a value for it names the download: the title (so %(title)s) is what was typed
    typed = "Typed: 100% \\ mine"
    [item] = runtime.engine.add([{"url": origin.clip_url, "dl_fields": {"title": typed}}])
    done = finished(runtime, item.id)
    assert done["status"] == "finished", done
    assert done["title"] == typed
    assert (runtime.settings.download_path / done["filename"]).is_file()
    assert done["filename"].startswith("Typed") and done["filename"].endswith(".mp4")
    too_long = send(client, "POST", "/api/history",
                    {"url": origin.clip_url, "dl_fields": {"title": "x" * 1001}})
    assert too_long.status_code == 400 and "longer" in too_long.json["error"]


def test_contract_log_limit_is_clamped_to_150(client: TestClient) -> None:
    response = client.simulate_get("/api/logs", params={"limit": "1000"})
    assert response.status_code == 200, response.text
    assert response.json["limit"] == 150


def test_convert_reports_a_paths_folder_inside_and_refuses_what_escapes(
        client: TestClient, runtime: Runtime, origin: MediaOrigin) -> None:
    def convert(args: str) -> dict[str, Any]:
        response = send(client, "POST", "/api/yt-dlp/convert", {"args": args})
        assert response.status_code == 200, response.text
        return response.json

    inside = convert("-P some/dir --write-sub --embed-subs")
    assert inside["download_path"] == "some/dir" and "removed_options" not in inside
    assert inside["opts"]["writesubtitles"] is True
    assert convert("-P home:a/b")["download_path"] == "a/b"
    for escaping in ("-P /etc", "-P ../up", "-P ~/x", "-P temp:tmpdir", "-xP/tmp/evil"):
        refused = convert(escaping)
        assert refused["download_path"] is None, escaping
        assert refused["removed_options"] == ["--paths"], escaping
    # used as the item's folder when downloading; what escapes is removed, not used
    [kept] = runtime.engine.add([{"url": origin.clip_url, "cli": "-P some/dir"}])
    [dropped] = runtime.engine.add([{"url": origin.clip2_url, "cli": "-P ../up"}])
    assert (kept.folder, dropped.folder, dropped.removed_options) == ("some/dir", "",
                                                                      ["--paths"])
    assert finished(runtime, kept.id)["filename"] == "some/dir/clip.mp4"
    assert (runtime.settings.download_path / "some/dir/clip.mp4").is_file()
    assert "/" not in finished(runtime, dropped.id)["filename"]
    assert not (runtime.settings.download_path.parent / "up").exists()


# --- what YTPTube's web UI reads ------------------------------------------------------------


def test_options_configuration_and_presets_as_the_ui_reads_them(client: TestClient) -> None:
    options = client.simulate_get("/api/yt-dlp/options").json
    assert isinstance(options, list) and len(options) > 100
    for option in options:
        assert isinstance(option["flags"], list) and option["flags"]
        assert isinstance(option["description"], str) and isinstance(option["group"], str)
        assert isinstance(option["ignored"], bool)
    by_flag = {flag: o for o in options for flag in o["flags"]}
    assert by_flag["--exec"]["ignored"] and not by_flag["--format"]["ignored"]

    app = client.simulate_get("/api/system/configuration").json["app"]
    assert app["default_preset"] == "default"
    assert app["app_version"] == app["version"]
    from yt_dlp.version import __version__ as ytdlp

    assert app["ytdlp_version"] == ytdlp

    preset = send(client, "POST", "/api/presets",
                  {"name": "p", "priority": "2", "cookies_file": None, "_id": "x"})
    assert preset.status_code == 200 and preset.json["priority"] == 2, preset.text
    patched = send(client, "PATCH", f"/api/presets/{preset.json['id']}", {"priority": 7})
    assert patched.json["priority"] == 7
    for bad in ({"name": "q", "priority": -1}, {"name": "q", "priority": True},
                {"name": "q", "colour": "red"}):
        assert send(client, "POST", "/api/presets", bad).status_code == 400, bad


def test_auth_status_login_user_and_the_cookie_the_readme_describes(app_with: Start) -> None:
    _, open_client = app_with()
    assert open_client.simulate_get("/api/auth/status").json == {
        "disabled": True, "setup_required": False, "authenticated": False, "user": None}

    _, client = app_with(YTP_AUTH_USERNAME="ann", YTP_AUTH_PASSWORD="s3cret-pass")
    assert client.simulate_get("/api/history").status_code == 401
    status = client.simulate_get("/api/auth/status")
    assert status.status_code == 200
    assert status.json == {"disabled": False, "setup_required": False,
                           "authenticated": False, "user": None}
    login = send(client, "POST", "/api/auth/login",
                 {"username": "ann", "password": "s3cret-pass"})
    assert login.status_code == 200 and login.json["user"] == {"username": "ann"}
    assert (login.json["status"], login.json["remember"]) == ("success", False)
    cookie = login.headers["Set-Cookie"]
    assert "SameSite=Strict" in cookie and "HttpOnly" in cookie
    assert "Max-Age" not in cookie  # a browser session's cookie
    assert time.time() < login.json["expires"] < time.time() + 2 * 86400
    kept = send(client, "POST", "/api/auth/login?remember=true",
                {"username": "ann", "password": "s3cret-pass"})
    assert kept.json["remember"] is True and "Max-Age=2592000" in kept.headers["Set-Cookie"]
    assert kept.json["expires"] > time.time() + 29 * 86400
    readme = README.read_text()
    assert "SameSite=Strict" in readme and "SameSite=Lax" not in readme
    name, value = cookie.split(";", 1)[0].split("=", 1)
    me = client.simulate_get("/api/auth/status", headers={"Cookie": f"{name}={value}"})
    assert me.json == {"disabled": False, "setup_required": False, "authenticated": True,
                       "user": {"username": "ann"}}
    basic = client.simulate_get("/api/auth/status", headers={
        "Authorization": "Basic " + base64.b64encode(b"ann:wrong").decode()})
    assert basic.json["authenticated"] is False


def test_failed_logins_are_counted_by_the_peer_not_a_forwarded_for_it_sets(
        app_with: Start) -> None:
    """Without a trusted proxy, X-Forwarded-For is the client's own word: a guesser that
    changes it on every try is still one address, and throttled as one."""
    _, client = app_with(YTP_AUTH_USERNAME="ann", YTP_AUTH_PASSWORD="s3cret-pass")
    answers = [client.simulate_post("/api/auth/login", remote_addr="192.0.2.7",
                                    json={"username": "ann", "password": f"guess{n}"},
                                    headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code
               for n in range(8)]
    assert answers[0] == 401 and answers[-1] == 429, answers


# --- today's Flasharr on the Flasharr view ------------------------------------------------

TASK_EXTRAS = {"size", "downloaded", "error_message", "original_url", "host",
               "completed_at"}
COUNTS = {"downloading", "queued", "paused", "completed", "failed", "cancelled", "all"}


def tasks(client: TestClient, **params: str) -> dict[str, Any]:
    response = client.simulate_get("/api/downloads", params=params)
    assert response.status_code == 200, response.text
    return response.json


def state_of(client: TestClient, item_id: str) -> str:
    return client.simulate_get(f"/api/downloads/{item_id}").json["state"]


def test_flasharr_list_extras_filters_retry_and_counts(
        client: TestClient, runtime: Runtime, origin: MediaOrigin) -> None:
    good = send(client, "POST", "/api/downloads", {"url": origin.clip_url}).json
    bad = send(client, "POST", "/api/downloads", {"url": origin.fail_url}).json
    assert finished(runtime, good["id"])["status"] == "finished"
    assert finished(runtime, bad["id"])["status"] == "error"

    page = tasks(client, status="COMPLETED")  # today's Flasharr sends upper case
    [done] = page["tasks"]
    assert page["downloads"] == page["tasks"]
    assert (page["limit"], page["total_pages"], page["pages"]) == (page["limit"], 1, 1)
    assert set(page["status_counts"]) == COUNTS
    assert page["status_counts"]["completed"] == 1 and page["status_counts"]["failed"] == 1
    assert page["stats"]["cancelled"] == 0 and set(page["stats"]["db_counts"]) == COUNTS
    size = (runtime.settings.download_path / "clip.mp4").stat().st_size
    assert set(done) >= TASK_EXTRAS
    assert (done["id"], done["state"], done["size"], done["downloaded"]) == (
        good["id"], "completed", size, size)
    assert (done["error_message"], done["original_url"]) == (None, origin.clip_url)
    assert done["host"] == "generic" and done["completed_at"].endswith("Z")
    [failed] = tasks(client, status="Failed")["tasks"]
    assert failed["id"] == bad["id"] and "404" in failed["error_message"]
    refused = client.simulate_get("/api/downloads", params={"status": "sleeping"})
    assert refused.status_code == 400 and "any case" in refused.json["error"]

    # retry: added again (a new id), the old row is gone
    retried = client.simulate_post(f"/api/downloads/{bad['id']}/retry")
    assert retried.status_code == 200 and retried.json["success"] is True, retried.text
    assert client.simulate_get(f"/api/downloads/{bad['id']}").status_code == 404
    again = finished(runtime, retried.json["id"])
    assert (again["url"], again["status"]) == (origin.fail_url, "error")

    # cancelled downloads are counted apart (and within failed)
    slow = send(client, "POST", "/api/downloads", {"url": origin.slow_url}).json
    wait_for(lambda: state_of(client, slow["id"]) == "downloading", timeout=60,
             message="the slow download to run")
    assert client.simulate_post(f"/api/downloads/{slow['id']}/retry").status_code == 409
    send(client, "POST", "/api/history/cancel", {"ids": [slow["id"]]})
    finished(runtime, slow["id"])
    stats = client.simulate_get("/api/engine/stats").json
    assert (stats["cancelled"], stats["failed"]) == (1, 2)
    assert stats["db_counts"]["cancelled"] == 1
    assert client.simulate_get("/api/downloads/stats").json["cancelled"] == 1
    [cancelled] = tasks(client, status="cancelled")["tasks"]
    assert cancelled["id"] == slow["id"] and cancelled["state"] == "failed"


def test_flasharr_pause_all_resume_all_batches_and_nested_settings(
        client: TestClient, runtime: Runtime, origin: MediaOrigin) -> None:
    # nothing in the queue: pause-all is not taken for a download id (it was a 405)
    empty = client.simulate_post("/api/downloads/pause-all")
    assert empty.status_code == 200 and empty.json == {"success": True, "affected": 0}
    batch = {"batch_id": "b1", "batch_name": "Season 1"}
    first = send(client, "POST", "/api/downloads", {"url": origin.clip_url, **batch}).json
    second = send(client, "POST", "/api/downloads",
                  {"url": origin.slow_url, "auto_start": False, **batch}).json
    loose = send(client, "POST", "/api/downloads", {"url": origin.slow_url_at(100_000)}).json
    finished(runtime, first["id"])
    wait_for(lambda: state_of(client, loose["id"]) == "downloading", timeout=60,
             message="the loose download to run")

    rows = client.simulate_get("/api/downloads/batches").json
    [summary] = rows["batches"]
    assert {k: summary[k] for k in ("batch_id", "batch_name", "total_items",
                                    "completed_items", "paused_items", "queued_items",
                                    "downloading_items", "failed_items", "state")} == {
        "batch_id": "b1", "batch_name": "Season 1", "total_items": 2, "completed_items": 1,
        "paused_items": 1, "queued_items": 0, "downloading_items": 0, "failed_items": 0,
        "state": "paused"}
    assert summary["speed"] == 0 and summary["created_at"].endswith("Z")
    assert [t["id"] for t in rows["standalone"]] == [loose["id"]]
    assert (rows["total"], rows["page"], rows["total_pages"]) == (2, 1, 1)
    assert set(rows["status_counts"]) == COUNTS and "active_downloads" in rows["stats"]
    items = client.simulate_get("/api/downloads/batch/b1/items").json
    assert [t["id"] for t in items] == [first["id"], second["id"]]
    assert client.simulate_get("/api/downloads/batch/nope/items").status_code == 404

    paused = client.simulate_post("/api/downloads/pause-all").json
    assert paused == {"success": True, "affected": 1}
    wait_for(lambda: state_of(client, loose["id"]) == "paused",
             message="the running download to stop, paused")
    resumed = client.simulate_post("/api/downloads/resume-all").json
    assert resumed == {"success": True, "affected": 2}  # the loose one and the batch's
    wait_for(lambda: state_of(client, second["id"]) in {"queued", "downloading"},
             message="the batch's paused download to resume")

    assert client.simulate_post("/api/downloads/batch/b1/pause").json["affected"] == 1
    deleted = client.simulate_delete("/api/downloads/batch/b1").json
    assert deleted["success"] is True and deleted["affected"] == 2
    wait_for(lambda: client.simulate_get("/api/downloads/batch/b1/items").status_code == 404,
             message="the batch's downloads to be gone (a running one stops first)")
    client.simulate_delete(f"/api/downloads/{loose['id']}")

    settings = client.simulate_get("/api/settings").json
    assert settings["downloads"] == {
        "directory": str(runtime.settings.download_path),
        "max_concurrent": settings["max_concurrent_downloads"]}
    changed = send(client, "PUT", "/api/settings", {"downloads": {"max_concurrent": 3}})
    assert changed.status_code == 200, changed.text
    assert client.simulate_get("/api/settings").json["max_concurrent_downloads"] == 3
    wrong = send(client, "PUT", "/api/settings", {"downloads": {"segments": 4}})
    assert wrong.status_code == 400



def test_a_database_from_before_preset_priority_gets_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db, _ = open_database(path)
    with orm.db_session:
        db.execute("INSERT INTO presets (name, description, folder, template, cookies, cli, "
                   "nfo, builtin, priority) VALUES ('old', '', '', '', '', '', '', 0, 0)")
        db.execute("ALTER TABLE presets DROP COLUMN priority")  # as databases before it were
    db.disconnect()
    db, entities = open_database(path)
    with orm.db_session:
        [old] = orm.select(p for p in entities.Preset)[:]
        assert (old.name, old.priority) == ("old", 0)
    db.disconnect()
