"""A person's credentials for a site never land in what is written of an item's info.

yt-dlp puts the cookies it sends in an item's info (on the item and on each format) and the
headers it sends in each format's ``http_headers``: a preset's login cookies were in every
``.info.json`` of the media folder (which the media server's group reads and the LAN may
share), in a channel's metadata and in the URL info the API answers. Real downloads from the
local origin, the real runtime in process."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import falcon.testing
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine.credentials import without_credentials
from appliance.runtime import Runtime
from appliance.store import ItemStore

Client = falcon.testing.TestClient
COOKIE = "SECRETCOOKIE4242"
TOKEN = "SECRETTOKEN4242"
COOKIES = f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t{COOKIE}\n"
HEADER = f"--add-header 'Authorization: Bearer {TOKEN}'"
# Values for the NOT NULL columns of items without a default.
FILLING = {"TEXT": "", "INTEGER": 0, "BIGINT": 0, "REAL": 0.0, "BOOLEAN": 0, "JSON": "{}"}


def _preset(client: Client) -> str:
    made = client.simulate_post("/api/presets", json={
        "name": "logged-in", "cookies": COOKIES, "cli": HEADER})
    assert made.status_code in (200, 201), made.text
    return "logged-in"


def _no_secret(text: str) -> None:
    assert COOKIE not in text and TOKEN not in text


def test_an_items_info_json_holds_no_cookie_and_no_authorization(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    runtime, client = app_with()
    added = client.simulate_post("/api/history", json={
        "url": origin.watch_url("clip"), "preset": _preset(client),
        "cli": "--write-info-json"})
    assert added.status_code == 200, added.text

    def ended() -> Any:
        done = runtime.engine.store.page("done", 1, 10).items
        return done[0] if done else None

    item = wait_for(ended, timeout=90, message="the download")
    assert item.status == "finished", item.error
    [written] = Path(runtime.settings.download_path).rglob("*.info.json")
    text = written.read_text()
    _no_secret(text)
    info = json.loads(text)
    assert info["title"] and info["formats"], "a real info file"
    headers = info["formats"][0]["http_headers"]
    assert headers.get("User-Agent"), "the other headers are kept"
    assert (Path(runtime.settings.download_path) / item.filename).stat().st_size > 0
    # and what the service keeps and shows of the item: its record, the history's answer
    _no_secret(json.dumps(runtime.engine.store.get(item.id).to_dict(), default=str))
    _no_secret(client.simulate_get("/api/history", params={"type": "done"}).text)


def test_the_url_info_answer_holds_no_credentials(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    _, client = app_with()
    answer = client.simulate_get("/api/yt-dlp/url/info", params={
        "url": origin.watch_url("clip"), "preset": _preset(client)})
    assert answer.status_code == 200, answer.text
    _no_secret(answer.text)
    assert answer.json["formats"], answer.text


def test_a_channels_metadata_holds_no_credentials(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    task = client.simulate_post("/api/tasks", json={
        "name": "channel", "url": origin.watch_url("clip"), "folder": "channel",
        "preset": _preset(client), "auto_start": False})
    assert task.status_code == 200, task.text
    written = client.simulate_post(f"/api/tasks/{task.json['id']}/metadata")
    assert written.status_code == 200, written.text
    text = (Path(runtime.settings.download_path) / written.json["json_file"]).read_text()
    _no_secret(text)
    assert json.loads(text)["title"]


def test_credentials_are_taken_wherever_yt_dlp_put_them() -> None:
    info = {"title": "t", "cookies": "a=1", "http_headers": {"Cookie": "a=1", "X": "y"},
            "formats": [{"url": "u", "cookies": "a=1", "http_headers": {
                "authorization": "Bearer t", "Proxy-Authorization": "Basic p",
                "User-Agent": "ua"}}],
            "entries": [{"requested_formats": [{"cookies": "b=2", "format_id": "f"}]}],
            "tags": ["cookies"], "description": {"cookies": 3}}
    assert without_credentials(info) == {
        "title": "t", "http_headers": {"X": "y"},
        "formats": [{"url": "u", "http_headers": {"User-Agent": "ua"}}],
        "entries": [{"requested_formats": [{"format_id": "f"}]}],
        "tags": ["cookies"], "description": {"cookies": 3}}
    assert info["cookies"] == "a=1", "the info given is left as it was"


def test_cookies_kept_by_an_earlier_version_are_taken_out_once(tmp_path: Path) -> None:
    path = tmp_path / "appliance.db"
    ItemStore(path, tmp_path / "downloads").close()
    with sqlite3.connect(path) as db:
        columns = db.execute("PRAGMA table_info(items)").fetchall()
        for item_id, info in (("kept", json.dumps({"title": "t", "cookies": f"s={COOKIE}"})),
                              ("odd", "not json"), ("plain", '{"title": "p"}')):
            row = {name: FILLING[kind] for _, name, kind, not_null, default, _ in columns
                   if not_null and default is None}
            row.update(id=item_id, info=info)
            db.execute(f"INSERT INTO items ({', '.join(row)}) VALUES "
                       f"({', '.join('?' * len(row))})", list(row.values()))
        db.execute("PRAGMA user_version = 0")  # as an earlier version left it
    ItemStore(path, tmp_path / "downloads").close()
    with sqlite3.connect(path) as db:
        assert dict(db.execute("SELECT id, info FROM items")) == {
            "kept": '{"title":"t"}', "odd": "not json", "plain": '{"title": "p"}'}
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
