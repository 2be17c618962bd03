"""Presets, download fields, conditions, archives and the command console, on the real engine
with real yt-dlp against the local media origin."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yt_dlp
from conftest import client_of_module, make_settings, started
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.api.app import create_app
from appliance.engine.filters import MAX_LENGTH
from appliance.engine.nfo import write_nfo
from appliance.engine.options import Context, parse_cli
from appliance.engine.presets import BUILTIN
from appliance.events import Event
from appliance.runtime import Runtime
from appliance.store import Item


@pytest.fixture
def shaped(tmp_path: Path) -> Iterator[tuple[Runtime, TestClient]]:
    rt = started(make_settings(tmp_path, YTP_KEEP_ARCHIVE="true", YTP_CONSOLE_ENABLED="true"))
    yield rt, TestClient(create_app(rt))
    rt.stop()


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from client_of_module(tmp_path_factory, "refusing", YTP_KEEP_ARCHIVE="true",
                                YTP_CONSOLE_ENABLED="true")


def add(client: TestClient, body: Any) -> Any:
    response = client.simulate_post("/api/history", json=body)
    assert response.status_code == 200, response.text
    return response.json


def finished(client: TestClient, item_id: str, timeout: float = 90) -> dict:
    return wait_for(lambda: (i := client.simulate_get(f"/api/history/{item_id}").json)
                    ["kind"] == "done" and i, timeout=timeout, message=f"{item_id} done")


# --- presets --------------------------------------------------------------------------


@pytest.mark.parametrize("preset", BUILTIN, ids=[p["name"] for p in BUILTIN])
def test_builtin_preset_options_parse_with_ytdlp(preset: dict) -> None:
    options = parse_cli(preset.get("cli", ""), context=Context.BUILTIN_PRESET)
    assert options.removed == []
    params = yt_dlp.parse_options(options.args).ydl_opts
    if "-x" in shlex.split(preset.get("cli", "")):
        assert any(pp["key"] == "FFmpegExtractAudio" for pp in params["postprocessors"])


def test_preset_crud_and_rules(shaped) -> None:
    _rt, client = shaped
    listed = client.simulate_get("/api/presets?per_page=100").json
    names = [p["name"] for p in listed["items"]]
    assert names[:2] == ["default", "video-1080p"] and len(names) == len(BUILTIN)
    assert all(p["default"] for p in listed["items"])
    created = client.simulate_post("/api/presets", json={"name": "subs", "cli": "--write-subs",
                                                         "folder": "tv"})
    assert created.status_code == 200 and created.json["default"] is False
    preset_id = created.json["id"]
    assert client.simulate_post("/api/presets", json={"name": "subs"}).status_code == 409
    patched = client.simulate_patch(f"/api/presets/{preset_id}", json={"description": "x"})
    assert patched.json["description"] == "x" and patched.json["cli"] == "--write-subs"
    replaced = client.simulate_put(f"/api/presets/{preset_id}", json={"name": "subs2"})
    assert replaced.json["cli"] == "" and replaced.json["name"] == "subs2"
    default_id = listed["items"][0]["id"]
    for response in (client.simulate_patch(f"/api/presets/{default_id}", json={"cli": "-x"}),
                     client.simulate_delete(f"/api/presets/{default_id}")):
        assert response.status_code == 400 and "default preset" in response.json["error"]
    assert response.json["error"] == "'default' is a default preset and cannot be deleted."
    assert client.simulate_get("/api/presets/9999").status_code == 404
    assert client.simulate_delete(f"/api/presets/{preset_id}").json["name"] == "subs2"
    assert client.simulate_get(f"/api/presets/{preset_id}").status_code == 404


@pytest.mark.parametrize(("body", "text"), [
    ({"name": "x", "cli": "--no-such-thing"}, "no such option: --no-such-thing"),
    ({"name": "x", "cli": "--exec ls"}, "not allowed in a preset: --exec"),
    ({"name": "x", "folder": "../up"}, "inside the download folder"),
    ({"name": "x", "cookies": "nope"}, "Netscape format"),
    ({"name": "x", "nfo": "series"}, "nfo must be"),
    ({"name": ""}, "name is required"),
    ({"name": 3}, "name must be a string"),
    ({"name": "x", "colour": "red", "size": 1}, "Unknown preset field(s): colour, size."),
    ({"name": "x", "priority": 2**31}, "priority must be between"),
])
def test_preset_bad_input(refusing: TestClient, body: dict, text: str) -> None:
    response = refusing.simulate_post("/api/presets", json=body)
    assert response.status_code == 400 and text in response.json["error"], response.json


# Each kind of record: the least it is made of, and its other fields.
RECORDS = {
    "/api/presets": ({"name": "n"}, ["description", "folder", "template", "cookies", "cli"]),
    "/api/conditions": ({"name": "n", "filter": "is_live"},
                        ["description", "cli", "extras", "enabled", "priority"]),
    "/api/dl_fields": ({"name": "n", "field": "--proxy", "kind": "text"},
                       ["description", "value", "icon", "order", "extras"]),
}


@pytest.mark.parametrize("path", RECORDS)
def test_a_field_sent_as_null_is_a_field_not_given(shaped, path: str) -> None:
    """A client sends a record back as it read it, an empty field as null: stored, null
    failed the write (a 500)."""
    _rt, client = shaped
    least, others = RECORDS[path]
    created = client.simulate_post(path, json={**least, **dict.fromkeys(others)})
    assert created.status_code == 200, created.text
    record = f"{path}/{created.json['id']}"
    patched = client.simulate_patch(record, json=dict.fromkeys(others))
    assert patched.status_code == 200 and patched.json == created.json
    named = client.simulate_patch(record, json={"name": None})
    assert named.status_code == 200 and named.json["name"] == "n"
    replaced = client.simulate_put(record, json={"name": None})
    assert replaced.status_code == 400 and "name is required" in replaced.json["error"]


def test_a_presets_cli_is_kept_as_it_is_read(shaped) -> None:
    """``-P`` inside the download folder is the preset's folder; the options are kept as
    they were split (an archive first), quoted once."""
    _rt, client = shaped
    created = client.simulate_post("/api/presets", json={
        "name": "p", "cli": "-f  'b'  -P sub/dir --download-archive own.txt"})
    assert created.status_code == 200, created.text
    assert created.json["folder"] == "sub/dir"
    assert created.json["cli"] == "--download-archive own.txt -f b"
    clash = client.simulate_post("/api/presets", json={"name": "q", "folder": "a", "cli": "-P b"})
    assert clash.status_code == 400 and "name different folders" in clash.json["error"]


def test_a_presets_cookies_are_its_downloads_unless_the_item_brings_its_own(shaped) -> None:
    rt, client = shaped
    jar = "a.example\tFALSE\t/\tFALSE\t0\tsid\tfrom-the-preset\n"
    own = "a.example\tFALSE\t/\tFALSE\t0\tsid\tthe-items-own\n"
    created = client.simulate_post("/api/presets", json={"name": "jar", "cookies": jar})
    assert created.status_code == 200, created.text
    url = "http://a.example/v.mp4"
    assert rt.engine.planner.plan(Item(id="i1", url=url, preset="jar")).cookies == jar.strip()
    assert rt.engine.planner.plan(Item(id="i2", url=url, preset="jar", cookies=own)
                                  ).cookies == own
    command = client.simulate_post("/api/yt-dlp/command", json={"url": url, "preset": "jar"})
    assert command.status_code == 200, command.text
    assert "--cookies" in shlex.split(command.json["command"])


def test_a_presets_priority_may_be_its_digits_as_text(shaped) -> None:
    _rt, client = shaped
    created = client.simulate_post("/api/presets", json={"name": "p", "priority": " 5 "})
    assert created.status_code == 200 and created.json["priority"] == 5, created.text
    lowest = client.simulate_post("/api/presets", json={"name": " q  ", "priority": 0})
    assert lowest.status_code == 200 and lowest.json["priority"] == 0, lowest.text
    assert lowest.json["name"] == "q"
    below = client.simulate_post("/api/presets", json={"name": "r", "priority": -1})
    assert below.status_code == 400 and below.json["error"] == "priority must be 0 or more."


def test_a_preset_a_condition_names_is_neither_deleted_nor_renamed(shaped) -> None:
    _rt, client = shaped
    preset = client.simulate_post("/api/presets", json={"name": "p"}).json
    condition = client.simulate_post("/api/conditions", json={
        "name": "c", "filter": "is_live", "extras": {"preset": "p"}}).json
    for action, response in (
            ("deleted", client.simulate_delete(f"/api/presets/{preset['id']}")),
            ("renamed", client.simulate_patch(f"/api/presets/{preset['id']}",
                                              json={"name": "q"}))):
        assert response.status_code == 409
        assert response.json["error"].startswith(
            f"Preset 'p' cannot be {action}: condition 'c' use it")
    client.simulate_delete(f"/api/conditions/{condition['id']}")
    assert client.simulate_delete(f"/api/presets/{preset['id']}").status_code == 200


def test_config_update_events(shaped) -> None:
    rt, client = shaped
    seen: list[Event] = []
    rt.bus.subscribe(lambda e: seen.append(e) if e.name == "config_update" else None)
    preset = client.simulate_post("/api/presets", json={"name": "p1"}).json
    client.simulate_delete(f"/api/presets/{preset['id']}")
    client.simulate_post("/api/conditions", json={"name": "c", "filter": "is_live"})
    assert [(e.data["feature"], e.data["action"]) for e in seen] == [
        ("presets", "create"), ("presets", "delete"), ("conditions", "create")]
    assert seen[0].data["data"]["name"] == "p1"


def test_audio_preset_produces_audio_file(shaped, origin: MediaOrigin) -> None:
    rt, client = shaped
    [queued] = add(client, {"url": origin.clip_url, "preset": "audio-m4a"})
    item = finished(client, queued["id"])
    assert item["status"] == "finished", item
    path = rt.settings.download_path / item["filename"]
    assert path.suffix == ".m4a"
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True, text=True, check=True).stdout)
    kinds = {s["codec_type"] for s in probe["streams"] if s["codec_type"] != "video"
             or s.get("disposition", {}).get("attached_pic") != 1}
    assert kinds == {"audio"}


def test_priority_merge_request_over_preset_over_defaults(tmp_path: Path) -> None:
    rt = started(make_settings(tmp_path, YTP_CONSOLE_ENABLED="true",
                               YTP_YTDLP_CLI="--retries 3 -f worst"))
    try:
        client = TestClient(create_app(rt))
        client.simulate_post("/api/presets", json={
            "name": "p", "folder": "from-preset", "template": "%(id)s.%(ext)s",
            "cli": "-f bestaudio"})
        command = client.simulate_post("/api/yt-dlp/command", json={
            "url": "http://x.invalid/v", "preset": "p", "cli": "-f best"}).json["command"]
        argv = shlex.split(command)
        home = rt.settings.download_path / "from-preset"
        assert argv[:5] == ["yt-dlp", "--paths", str(home), "--output", "%(id)s.%(ext)s"]
        # defaults, then the preset, then the request: the last -f wins in yt-dlp
        formats = [argv[i + 1] for i, a in enumerate(argv) if a == "-f"]
        assert formats == ["worst", "bestaudio", "best"] and argv[-1] == "http://x.invalid/v"
        own = client.simulate_post("/api/yt-dlp/command", json={
            "url": "http://x.invalid/v", "preset": "p", "folder": "mine",
            "template": "%(title)s.%(ext)s", "cookies": "h\tFALSE\t/\tFALSE\t0\tn\tv"}).json
        argv = shlex.split(own["command"])
        assert argv[2] == str(rt.settings.download_path / "mine")
        assert argv[4] == "%(title)s.%(ext)s" and "--cookies" in argv
        # where the engine writes them when the item runs: its own temp folder
        cookies = Path(argv[argv.index("--cookies") + 1])
        assert cookies.name == "cookies.txt" and cookies.parent.parent == rt.settings.temp_path
        bad = client.simulate_post("/api/yt-dlp/command", json={"url": "x"})
        assert bad.status_code == 400
    finally:
        rt.stop()


def test_command_console_disabled_is_403(client: TestClient) -> None:
    response = client.simulate_post("/api/yt-dlp/command", json={"url": "http://x.invalid/"})
    assert response.status_code == 403 and response.json["code"] == "FORBIDDEN"


# --- download fields ------------------------------------------------------------------


def test_dl_fields_apply_as_options(shaped) -> None:
    _rt, client = shaped
    created = client.simulate_post("/api/dl_fields", json={
        "name": "Proxy", "field": "--proxy", "kind": "text", "order": 1})
    assert created.status_code == 200
    client.simulate_post("/api/dl_fields", json={"name": "Subs", "field": "--write-subs",
                                                 "kind": "bool"})
    client.simulate_post("/api/dl_fields", json={"name": "Retries", "field": "--retries",
                                                 "kind": "number"})
    command = client.simulate_post("/api/yt-dlp/command", json={
        "url": "http://x.invalid/v", "dl_fields": {"--proxy": "http://127.0.0.1:9",
                                                   "Subs": True, "Retries": 3}}).json["command"]
    assert "--proxy http://127.0.0.1:9" in command and "--write-subs" in command
    assert "--retries 3" in command
    [queued] = add(client, {"url": "http://127.0.0.1:9/x.mp4", "auto_start": False,
                            "dl_fields": {"--proxy": "http://127.0.0.1:9"}})
    item = client.simulate_get(f"/api/history/{queued['id']}").json
    assert "--proxy" in item["cli"]
    config = client.simulate_get("/api/system/configuration").json
    assert [f["name"] for f in config["dl_fields"]] == ["Proxy", "Subs", "Retries"]
    for fields, text in (({"--nope": "x"}, "not a configured download field"),
                         ({"Subs": "yes"}, "must be true or false"),
                         ({"Retries": "3"}, "must be a number"),
                         ({"Retries": True}, "must be a number"),
                         ({"--proxy": 5}, "Proxy must be a string"),
                         ("x", "dl_fields must be an object")):
        response = client.simulate_post("/api/history", json={"url": "http://x.invalid/",
                                                              "dl_fields": fields})
        assert response.status_code == 400 and text in response.json["error"]


@pytest.mark.parametrize(("body", "text"), [
    ({"name": "E", "field": "--exec", "kind": "text"}, "not allowed"),
    ({"name": "N", "field": "--nope", "kind": "text"}, "not a yt-dlp option"),
    ({"name": "K", "field": "--proxy", "kind": "bool"}, "takes a value"),
    ({"name": "K", "field": "--write-subs", "kind": "text"}, "takes no value"),
    ({"name": "K", "field": "--proxy", "kind": "colour"}, "kind must be one of"),
    ({"name": "K", "field": "--proxy", "kind": "text", "order": "1"}, "order must be"),
    ({"name": 5, "field": "--proxy", "kind": "text"}, "name must be a string"),
    ({"name": " ", "field": "--proxy", "kind": "text"}, "name is required"),
    ({"name": "T", "field": "title", "kind": "bool"}, "its kind cannot be bool"),
    ({"name": "K", "field": "--proxy", "kind": "text", "order": 2**40}, "order must be between"),
    ({"name": "K", "field": "--proxy", "kind": 5}, "kind must be a string"),
    ({"name": "K", "field": "--write-subs", "kind": "number"}, "takes no value"),
    ({"name": "K", "field": 5, "kind": "text"}, "field must be a string"),
    ({"name": "K", "field": "--proxy", "kind": "text", "icon": 5}, "icon must be a string"),
    ({"name": "K", "field": "--proxy", "kind": "text", "value": []}, "value must be a string"),
    ({"name": "K", "field": "--proxy", "kind": "text", "description": {}},
     "description must be a string"),
    ({"name": "K", "field": "--proxy", "kind": "text", "extras": "x"}, "extras must be"),
])
def test_dl_field_bad_input(refusing: TestClient, body: dict, text: str) -> None:
    response = refusing.simulate_post("/api/dl_fields", json=body)
    assert response.status_code == 400 and text in response.json["error"], response.json


# --- conditions -----------------------------------------------------------------------


def test_condition_skips_short_clip_and_says_why(shaped, origin: MediaOrigin) -> None:
    _rt, client = shaped
    client.simulate_post("/api/conditions", json={
        "name": "too short", "filter": "duration < 2", "extras": {"skip": True},
        "priority": 5})
    client.simulate_post("/api/conditions", json={
        "name": "low priority", "filter": "duration < 100", "cli": "--write-info-json"})
    [short] = add(client, {"url": origin.watch_url("short")})
    [clip] = add(client, {"url": origin.watch_url("clip")})
    skipped = finished(client, short["id"])
    assert skipped["status"] == "skip"
    assert skipped["msg"] == "Skipped by condition 'too short'."
    assert skipped["extras"]["condition"] == "too short"
    # Added only now: once it is downloaded, the archive (checked first) would skip the
    # same URL as "already downloaded" instead.
    [opted_out] = add(client, {"url": origin.watch_url("short"), "template": "o.%(ext)s",
                               "extras": {"ignore_conditions": True}})
    other = finished(client, clip["id"])
    assert other["status"] == "finished" and "--write-info-json" in other["cli"]
    assert other["extras"]["condition"] == "low priority"
    assert finished(client, opted_out["id"])["status"] == "finished"


def test_condition_switches_preset(shaped, origin: MediaOrigin) -> None:
    _rt, client = shaped
    client.simulate_post("/api/conditions", json={
        "name": "audio for short", "filter": "duration < 2 || title ~= '(?i)^nothing$'",
        "extras": {"preset": "audio-m4a"}})
    [short] = add(client, {"url": origin.watch_url("short")})
    item = finished(client, short["id"])
    assert item["preset"] == "audio-m4a" and item["filename"].endswith(".m4a")


@pytest.mark.parametrize(("body", "status", "text"), [
    ({"name": "c", "filter": "(duration > 5"}, 400, "position"),
    ({"name": "c", "filter": "a=1&" * 2500 + "a"}, 400, "longer than 10,000 characters"),
    ({"name": "c", "filter": "title ~= '('"}, 400, "Invalid filter"),
    ({"name": "c", "filter": ""}, 400, "filter is required"),
    ({"name": "c", "filter": "is_live", "priority": "high"}, 400, "priority must be"),
    ({"name": "c", "filter": "is_live", "extras": {"preset": "nope"}}, 400, "not found"),
    ({"name": "c", "filter": "is_live", "cli": "--exec ls"}, 400, "not allowed"),
    # presets name archives and folders, not conditions
    ({"name": "c", "filter": "is_live", "cli": "--download-archive a.txt"}, 400,
     "not allowed here: --download-archive."),
    ({"name": "c", "filter": "is_live", "cli": "-P sub"}, 400, "not allowed here: --paths."),
    # read as an object where a preset is renamed or deleted: a 500 there
    ({"name": "c", "filter": "is_live", "extras": ["preset"]}, 400, "extras must be an object"),
    ({"name": "c", "filter": "is_live", "extras": {"skip": "yes"}}, 400, "extras.skip must"),
    ({"name": "c", "filter": "is_live", "priority": 2**31}, 400, "priority must be between"),
    ({"name": "c", "filter": "is_live", "cli": 5}, 400, "cli must be a string"),
])
def test_condition_bad_input(refusing: TestClient, body: dict, status: int, text: str) -> None:
    response = refusing.simulate_post("/api/conditions", json=body)
    assert response.status_code == status and text in response.json["error"], response.json


def test_condition_syntax_error_names_position(refusing: TestClient) -> None:
    response = refusing.simulate_post("/api/conditions",
                                      json={"name": "c", "filter": "duration >"})
    assert response.status_code == 400
    assert isinstance(response.json["position"], int)


def test_condition_test_endpoint(shaped, origin: MediaOrigin) -> None:
    _rt, client = shaped
    yes = client.simulate_post("/api/conditions/test", json={
        "url": origin.watch_url("clip"), "condition": "duration > 1 & duration < 10"}).json
    assert yes["status"] is True and yes["data"]["title"] == "Watch clip"
    assert "formats" not in yes["data"] and "http_headers" not in yes["data"]
    no = client.simulate_post("/api/conditions/test", json={
        "url": origin.watch_url("clip"), "condition": "duration > 100"}).json
    assert no["status"] is False
    # a filter that cannot be read is refused before the site is asked for the URL's info
    origin.clear_requests()
    for condition, position in (("duration >", 10), ("a=1&" * 2500 + "a", MAX_LENGTH)):
        bad = client.simulate_post("/api/conditions/test", json={"url": origin.clip_url,
                                                                 "condition": condition})
        assert bad.status_code == 400 and bad.json["position"] == position, bad.json
    assert origin.requests_for(origin.clip_url) == []
    missing = client.simulate_post("/api/conditions/test", json={"condition": "x"})
    assert missing.status_code == 400
    for preset, status in ((5, 400), (["default"], 400), ("default", 200)):
        tested = client.simulate_post("/api/conditions/test", json={
            "url": origin.watch_url("clip"), "condition": "duration > 1", "preset": preset})
        assert tested.status_code == status, (preset, tested.json)
        if status == 400:
            assert tested.json["error"] == "preset must be a preset name."
        else:
            assert tested.json["status"] is True


# --- archives -------------------------------------------------------------------------


def test_archived_url_is_skipped_without_extraction_until_removed(
    shaped, origin: MediaOrigin
) -> None:
    rt, client = shaped
    moved: list[Event] = []
    completed: list[Event] = []
    rt.bus.subscribe(lambda e: moved.append(e) if e.name == "item_moved" else None)
    rt.bus.subscribe(lambda e: completed.append(e) if e.name == "item_completed" else None)
    [first] = add(client, {"url": origin.clip_url})
    done = finished(client, first["id"])
    # announced as completed (Home Assistant and notifications wait for it), once
    wait_for(lambda: [e.data["id"] for e in completed] == [first["id"]], timeout=10,
             message="the download's completion announced")
    archive = rt.settings.config_path / "archive.txt"
    assert archive.read_text() == f"generic clip {origin.clip_url}\n"
    origin.clear_requests()
    [again] = add(client, {"url": origin.clip_url})
    skipped = finished(client, again["id"])
    assert skipped["status"] == "skip" and "generic clip" in skipped["msg"]
    wait_for(lambda: [e.data["item"]["status"] for e in moved if e.data["to"] == "history"
                      and e.data["item"]["id"] == again["id"]] == ["skip"],
             timeout=10, message="the skipped item's move to the history")
    assert origin.requests_for(origin.clip_url) == [], "no request for an archived URL"
    assert [e.data["id"] for e in completed] == [first["id"]]  # a skip is not a completion
    # forced: downloads anyway
    [forced] = add(client, {"url": origin.clip_url, "force": True, "template": "f.%(ext)s"})
    assert finished(client, forced["id"])["status"] == "finished"
    # remove the entry through the item: it can download again
    conflict = client.simulate_post(f"/api/history/{done['id']}/archive")
    assert conflict.status_code == 409
    removed = client.simulate_delete(f"/api/history/{done['id']}/archive")
    assert removed.status_code == 200 and "removed from" in removed.json["message"]
    assert client.simulate_delete(f"/api/history/{done['id']}/archive").status_code == 404
    again_in = client.simulate_post(f"/api/history/{done['id']}/archive")
    assert again_in.status_code == 200 and f"'generic clip {origin.clip_url}' archived" in \
        again_in.json["message"]
    assert client.simulate_delete(f"/api/history/{done['id']}/archive").status_code == 200
    [third] = add(client, {"url": origin.clip_url, "template": "t.%(ext)s"})
    assert finished(client, third["id"])["status"] == "finished"
    assert client.simulate_post("/api/history/nope/archive").status_code == 404
    # an item whose info was never read has no archive id to record
    [failed] = add(client, {"url": origin.fail_url})
    assert finished(client, failed["id"])["status"] == "error"
    unread = client.simulate_post(f"/api/history/{failed['id']}/archive")
    assert unread.status_code == 400
    assert unread.json["error"] == "The item has no archive id yet (its info was never read)."


def test_archiver_endpoints(shaped) -> None:
    _rt, client = shaped
    empty = client.simulate_get("/api/archiver", params={"preset": "default"}).json
    assert empty["count"] == 0 and empty["file"].endswith("archive.txt")
    added = client.simulate_post("/api/archiver", json={
        "preset": "default", "items": ["youtube abc", "vimeo 1"]})
    assert added.status_code == 200 and added.json["items"] == ["youtube abc", "vimeo 1"]
    assert added.json["status"] is True and added.json["file"].endswith("archive.txt")
    same = client.simulate_post("/api/archiver", json={"preset": "default",
                                                       "items": ["youtube abc"]})
    assert same.status_code == 304
    read = client.simulate_get("/api/archiver", params={"preset": "default", "ids": "abc"})
    assert read.json["items"] == ["youtube abc"]
    gone = client.simulate_delete("/api/archiver", json={"preset": "default",
                                                         "items": ["vimeo 1"]})
    assert gone.status_code == 200 and gone.json["items"] == ["vimeo 1"]
    assert client.simulate_delete("/api/archiver", json={
        "preset": "default", "items": ["vimeo 1"]}).status_code == 304
    # an id with a space (a file's name, to the generic extractor) is one entry
    spaced = client.simulate_post("/api/archiver", json={"preset": "default",
                                                        "items": ["generic my  video"]})
    assert spaced.status_code == 200 and spaced.json["items"] == ["generic my video"]
    assert client.simulate_delete("/api/archiver", json={
        "preset": "default", "items": ["generic my video"]}).status_code == 200
    for bad, text in (({"items": ["a b"]}, "preset is required"),
                      ({"preset": 5, "items": ["a b"]}, "preset is required"),
                      ({"preset": "", "items": ["a b"]}, "preset is required"),
                      ({"preset": "default", "items": []}, "items is required"),
                      ({"preset": "default", "items": ["onlyone"]}, "is not an archive id"),
                      ({"preset": "nope", "items": ["a b"]}, "not found")):
        refused = client.simulate_post("/api/archiver", json=bad)
        assert refused.status_code == 400 and text in refused.json["error"], refused.json
    assert client.simulate_get("/api/archiver").status_code == 400


def test_archive_ids_endpoint(shaped, origin: MediaOrigin) -> None:
    _rt, client = shaped
    result = client.simulate_post("/api/yt-dlp/archive_id", json=[
        origin.clip_url, 7, "https://www.youtube.com/watch?v=jNQXAC9IVRw", "http://[::1"]).json
    # the generic extractor's line holds its address: its id is only the file's name
    assert [r["archive_id"] for r in result] == [f"generic clip {origin.clip_url}", None,
                                                 "youtube jNQXAC9IVRw", None]
    assert result[1] == {"index": 1, "url": 7, "id": None, "ie_key": None, "archive_id": None,
                         "error": "not an http(s) URL"}
    assert result[2]["index"] == 2
    assert (result[0]["id"], result[0]["ie_key"], result[0]["error"]) == ("clip", "Generic", None)
    assert "Invalid IPv6 URL" in result[3]["error"]  # an extractor's parse raised: a 500
    assert client.simulate_post("/api/yt-dlp/archive_id", json={"a": 1}).status_code == 400


def test_an_archive_with_a_byte_not_utf8_still_decides_and_takes_entries(
        shaped, origin: MediaOrigin) -> None:
    """An archive brought from elsewhere (one line in another encoding): every read of it
    raised, the archiver answered 500 and each download it decides on failed."""
    rt, client = shaped
    archive = rt.settings.config_path / "archive.txt"
    line = f"generic clip {origin.clip_url}"
    archive.write_bytes(b"youtube caf\xe9\n" + line.encode() + b"\n")
    read = client.simulate_get("/api/archiver", params={"preset": "default", "ids": "clip"})
    assert read.status_code == 200 and read.json["items"] == [line]
    [item] = add(client, {"url": origin.clip_url})
    assert finished(client, item["id"])["status"] == "skip"
    added = client.simulate_post("/api/archiver", json={"preset": "default",
                                                       "items": ["youtube b"]})
    assert added.status_code == 200, added.text
    assert archive.read_bytes().endswith(f"\n{line}\nyoutube b\n".encode())


def test_media_server_preset_writes_nfo_and_layout(shaped, origin: MediaOrigin) -> None:
    rt, client = shaped
    [queued] = add(client, {"url": origin.watch_url("clip"), "preset": "media-server-tv"})
    item = finished(client, queued["id"])
    assert item["status"] == "finished", item
    media = rt.settings.download_path / item["filename"]
    assert item["filename"].startswith("Unknown/Season 2024/")
    nfo = media.with_suffix(".nfo").read_text()
    assert "<aired>2024-01-02</aired>" in nfo and "<title>Watch clip</title>" in nfo


def test_nfo_files(tmp_path: Path) -> None:
    media = tmp_path / "Show - S2024E0102 - Title [abc].mp4"
    media.write_bytes(b"x")
    info = {"title": "Title & <more>", "id": "abc", "upload_date": "20240102",
            "uploader": "Chan", "description": "d", "duration": 125, "extractor": "youtube"}
    nfo = write_nfo(media, "tv", info)
    text = nfo.read_text()
    assert "<episodedetails>" in text and "<season>2024</season>" in text
    assert "<episode>102</episode>" in text and "Title &amp; &lt;more&gt;" in text
    with pytest.raises(FileExistsError):
        write_nfo(media, "tv", info)
    movie = write_nfo(media, "movie", info, overwrite=True).read_text()
    assert "<movie>" in movie and "<year>2024</year>" in movie
    with pytest.raises(ValueError, match="no upload or release date"):
        write_nfo(media, "tv", {"title": "x"}, overwrite=True)


def test_a_listing_reads_the_entries_behind_the_url_it_is_given(shaped,
                                                                 origin: MediaOrigin) -> None:
    """What scheduled tasks read through a warm process (their own tests drive it too)."""
    rt, _client = shaped
    listed = rt.engine.list_entries(origin.playlist_url, "default")
    assert [entry["url"] for entry in listed["entries"]] == origin.playlist_entry_urls
