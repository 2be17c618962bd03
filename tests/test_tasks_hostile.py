"""Tasks against what a feed or a site says on purpose or by mistake: entries no item may
have, pictures at this machine's own addresses or that are not pictures, channel titles that
XML or the file system cannot hold. Real feeds and pages from the local origin, the real
runtime in process."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from support.feeds import FeedEntry
from support.origin import MediaOrigin

from appliance.files.fetch import any_address, fetch_image
from appliance.path_limits import NAME_MAX, byte_length
from appliance.runtime import Runtime
from appliance.tasks.metadata import safe_name, write_metadata

Client = falcon.testing.TestClient
PICTURE = b"\xff\xd8\xff\xe0 a picture"


def create(client: Client, **fields: Any) -> dict[str, Any]:
    response = client.simulate_post("/api/tasks", json={"auto_start": False, **fields})
    assert response.status_code == 200, response.text
    return response.json


# --- F4: one bad entry ----------------------------------------------------------------------


def test_entries_no_item_may_have_are_refused_one_by_one(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The good entries are queued, each bad one is named in the log with the reason and
    counted as failed; the run is a success that says so, and so is every later one."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    good = [origin.watch_url("clip"), origin.watch_url("clip2")]
    bad = {"javascript:alert(1)": "must be an http(s) URL",
           "file:///etc/passwd": "must be an http(s) URL",
           "data:text/html,hello": "must be an http(s) URL",
           f"{origin.base_url}/watch/a b.html": "must not contain spaces",
           f"{origin.base_url}/{'a' * 8200}": "longer than 8192 characters"}
    urls = [good[0], *bad, good[1]]
    origin.feeds.set("mixed", [FeedEntry(f"e{n}", url) for n, url in enumerate(urls)])
    task = create(client, name="mixed", url=f"{origin.base_url}/feeds/mixed.rss")

    first = runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
    assert (first["status"], first["found"], first["queued"], first["skipped"],
            first["failed"]) == ("success", 7, 2, 0, 5)
    assert first["error"].startswith("5 entries refused, not queued: url 'javascript")
    queued = sorted(i.url for i in runtime.tasks.items(task["id"], 0, 10)[0])
    assert queued == sorted(good)
    stored = client.simulate_get(f"/api/executions/{first['id']}").json
    assert (stored["status"], stored["failed"], stored["error"]) == \
        ("success", 5, first["error"])
    warnings = [line for line in stored["log"] if " WARNING entry refused" in line]
    assert len(warnings) == 5
    for url, reason in bad.items():
        assert any(reason in line and repr(url[:200]) in line for line in warnings), url

    again = runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
    assert (again["status"], again["queued"], again["skipped"], again["failed"]) == \
        ("success", 0, 2, 5)
    state = client.simulate_get(f"/api/tasks/{task['id']}").json
    assert (state["last_status"], state["failures"]) == ("success", 0)
    assert state["last_error"] == again["error"]


# --- F7: pictures fetched SSRF-safe ----------------------------------------------------------


def _channel(origin: MediaOrigin, name: str, picture: str) -> str:
    """A page whose picture (og:image) is ``picture`` on the origin (loopback)."""
    page = (f'<html><head><title>Channel {name}</title>'
            f'<meta property="og:image" content="{origin.base_url}/pages/{picture}">'
            f'</head><body><video><source src="{origin.clip_url}" type="video/mp4"></video>'
            f'<video><source src="{origin.clip2_url}" type="video/mp4"></video></body></html>')
    origin.feeds.pages[name] = (page.encode(), "text/html")
    return f"{origin.base_url}/pages/{name}"


def test_metadata_pictures_at_private_addresses_are_refused_by_default(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    origin.feeds.pages["private.jpg"] = (PICTURE, "image/jpeg")
    task = create(client, name="private", folder="tv/private",
                  url=_channel(origin, "private-channel", "private.jpg"))
    answer = client.simulate_post(f"/api/tasks/{task['id']}/metadata")
    assert answer.status_code == 200, answer.text
    assert answer.json["thumbnails"] == {}
    refused = answer.json["thumbnails_refused"]
    assert set(refused) == {"poster", "thumb", "fanart", "landscape"}
    assert all("127.0.0.1 is not allowed" in reason for reason in refused.values())
    home = runtime.settings.download_path / "tv" / "private"
    assert not list(home.glob("*.jpg"))
    assert (home / "tvshow.nfo").is_file()  # the rest is still written


def test_metadata_pictures_when_private_addresses_are_allowed(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The setting lets a picture on the local network in; what is not an image (the
    service's own configuration, say) stays out all the same."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_FETCH_PRIVATE_ADDRESSES="true")
    origin.feeds.pages["allowed.jpg"] = (PICTURE, "image/jpeg")
    origin.feeds.pages["config.json"] = (b'{"secret": "s3cr3t"}', "application/json")
    task = create(client, name="allowed", folder="tv/allowed",
                  url=_channel(origin, "allowed-channel", "allowed.jpg"))
    answer = client.simulate_post(f"/api/tasks/{task['id']}/metadata")
    assert answer.status_code == 200, answer.text
    assert answer.json["thumbnails"]["poster"] == "tv/allowed/poster.jpg"
    assert answer.json["thumbnails_refused"] == {}
    home = runtime.settings.download_path / "tv" / "allowed"
    assert (home / "poster.jpg").read_bytes() == PICTURE

    sneaky = create(client, name="sneaky", folder="tv/sneaky",
                    url=_channel(origin, "sneaky-channel", "config.json"))
    refused = client.simulate_post(f"/api/tasks/{sneaky['id']}/metadata").json
    assert refused["thumbnails"] == {}
    assert refused["thumbnails_refused"]["poster"] == \
        "Not an image (Content-Type: application/json)."
    written = [p.read_bytes() for p in (runtime.settings.download_path / "tv" / "sneaky"
                                        ).iterdir()]
    assert not any(b"s3cr3t" in data for data in written)


def test_one_refused_picture_leaves_the_others(tmp_path: Path, origin: MediaOrigin) -> None:
    origin.feeds.pages["avatar.jpg"] = (PICTURE, "image/jpeg")
    origin.feeds.pages["banner.json"] = (b"{}", "application/json")
    info = {"id": "UC1", "title": "Mixed", "thumbnails": [
        {"id": "avatar_uncropped", "url": f"{origin.base_url}/pages/avatar.jpg"},
        {"id": "banner_uncropped", "url": f"{origin.base_url}/pages/banner.json"}]}
    answer = write_metadata(tmp_path, tmp_path / "show", info,
                            lambda url: fetch_image(url, any_address).data)
    assert set(answer["thumbnails"]) == {"poster", "thumb", "icon"}
    assert set(answer["thumbnails_refused"]) == {"fanart", "banner", "landscape"}
    assert (tmp_path / "show" / "poster.jpg").read_bytes() == PICTURE
    assert not (tmp_path / "show" / "fanart.jpg").exists()
    nfo = ET.parse(tmp_path / "show" / "tvshow.nfo").getroot()
    assert nfo.find("fanart") is None


# --- F11, F12: what XML and the file system can hold -----------------------------------------


def _no_pictures(url: str) -> bytes:
    raise AssertionError(f"no picture is fetched here: {url}")


def test_control_characters_never_make_the_nfo_unreadable(tmp_path: Path) -> None:
    info = {"id": "UC\x01x", "title": "x\x00y<&>", "description": "one\x0btwo\nthree",
            "uploader": "up\x1floader\ufffe", "tags": ["t\x08ag", "fine"],
            "extractor_key": "Gen\x02eric"}
    answer = write_metadata(tmp_path, tmp_path / "show", info, _no_pictures)
    root = ET.parse(tmp_path / "show" / "tvshow.nfo").getroot()
    assert root.findtext("title") == "xy<&>"
    assert root.findtext("plot") == "onetwo\nthree"
    assert root.findtext("studio") == "uploader"
    assert [t.text for t in root.iter("tag")] == ["tag", "fine"]
    unique = root.find("uniqueid")
    assert unique is not None and (unique.text, unique.get("type")) == ("UCx", "generic")
    assert answer["title"] == "x\x00y<&>"  # the answer is JSON: it holds the site's words


@pytest.mark.parametrize("title", ["あ" * 150, "a" + "あ" * 200, "é" * 300],
                         ids=["kana", "ascii-then-kana", "accents"])
def test_a_long_title_is_cut_by_bytes_whole_characters_only(tmp_path: Path, title: str
                                                            ) -> None:
    answer = write_metadata(tmp_path, tmp_path / "show",
                            {"id": "UC" + "x" * 300, "title": title}, _no_pictures)
    name = Path(answer["json_file"]).name
    assert byte_length(name) <= NAME_MAX and name.endswith("].info.json")
    kept = name.split(" [", 1)[0]
    assert kept and title.startswith(kept)
    assert (tmp_path / answer["json_file"]).is_file()
    cut = safe_name(title, 100)
    assert byte_length(cut) <= 100 and title.startswith(cut)
    assert byte_length(cut) > 100 - len(title[-1].encode())  # no more than a character lost
