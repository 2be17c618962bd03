"""A download's file is the one its job wrote, not a path its options say it is.

``--parse-metadata`` and ``--replace-in-metadata`` set fields of an item's info at any stage
of its download (``after_move:``), the fields yt-dlp itself keeps its file's path in among
them (``filepath``). The item then named another item's file, or one outside the download
folder: its NFO file was written beside that one by the service itself, and deleting the item
with its file deleted the other. And an item's folder that is a link leading out of the
download folder is refused on the item, by the download process, before anything is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings, started
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.api.app import create_app
from appliance.runtime import Runtime


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Runtime, TestClient]]:
    rt = started(make_settings(tmp_path))
    yield rt, TestClient(create_app(rt))
    rt.stop()


def _download(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.simulate_post("/api/history", json=body)
    assert response.status_code == 200, response.text
    [item] = response.json if isinstance(response.json, list) else [response.json]
    return wait_for(lambda: (i := client.simulate_get(f"/api/history/{item['id']}").json)
                    ["kind"] == "done" and i, timeout=90, message="the item done")


def _pointing_at(path: Path) -> str:
    return f"--parse-metadata 'after_move:{path}:(?P<filepath>.+)'"


def test_an_item_cannot_name_another_items_file_as_its_own(
        served: tuple[Runtime, TestClient], origin: MediaOrigin) -> None:
    rt, client = served
    first = _download(client, url=origin.clip_url, template="precious.%(ext)s")
    precious = rt.settings.download_path / "precious.mp4"
    assert first["status"] == "finished" and precious.is_file()
    kept = precious.read_bytes()
    second = _download(client, url=origin.clip2_url, template="second.%(ext)s",
                       cli=_pointing_at(precious))
    assert second["status"] == "error", second
    assert "filepath" in second["error"], second
    assert second.get("filename") != "precious.mp4"
    response = client.simulate_delete("/api/history", json={
        "type": "done", "ids": [second["id"]], "remove_file": True})
    assert response.status_code == 200, response.text
    assert response.json == {second["id"]: "deleted"}
    assert precious.read_bytes() == kept


def test_no_nfo_file_is_written_beside_a_file_outside_the_download_folder(
        served: tuple[Runtime, TestClient], origin: MediaOrigin, tmp_path: Path) -> None:
    _rt, client = served
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.mp4").write_bytes(b"not a download")
    # a page whose info has an upload date: what an NFO file needs
    done = _download(client, url=origin.watch_url("clip"), preset="media-server-tv",
                     cli=_pointing_at(outside / "victim.mp4"))
    assert not (outside / "victim.nfo").exists()
    assert done["status"] == "error", done


@pytest.mark.parametrize(("path", "body"), [
    ("/api/presets", {"name": "p", "cli": "--parse-metadata 'title:(?P<filepath>.+)'"}),
    ("/api/presets", {"name": "p", "cli": "--parse-metadata 'after_move:title:_filename'"}),
    ("/api/conditions", {"name": "c", "filter": "duration > 1",
                         "cli": "--replace-in-metadata 'title,__finaldir' '.*' /tmp"}),
    ("/api/dl_fields", {"name": "f", "field": "filepath", "kind": "text"}),
])
def test_what_would_set_a_files_path_is_refused_when_saved(
        served: tuple[Runtime, TestClient], path: str, body: dict[str, Any]) -> None:
    _rt, client = served
    response = client.simulate_post(path, json=body)
    assert response.status_code == 400, response.text
    error = response.json["error"]
    assert "filepath" in error or "_filename" in error or "__finaldir" in error, error
    assert "title" not in error.split(":")[0], error


def test_a_field_of_another_name_is_still_set(served: tuple[Runtime, TestClient],
                                              origin: MediaOrigin) -> None:
    _rt, client = served
    done = _download(client, url=origin.clip_url, template="%(title)s.%(ext)s",
                     cli="--parse-metadata 'after_move:kept:(?P<album>.+)' "
                         "--parse-metadata 'pinned title:(?P<title>.+)'")
    assert done["status"] == "finished", done
    assert done["filename"] == "pinned title.mp4"


def test_an_items_folder_that_is_a_link_leading_out_is_refused_on_the_item(
        served: tuple[Runtime, TestClient], origin: MediaOrigin, tmp_path: Path) -> None:
    rt, client = served
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (rt.settings.download_path / "link").symlink_to(elsewhere)
    done = _download(client, url=origin.clip_url, folder="link")
    assert done["status"] == "error", done
    assert "leads outside the download folder" in done["error"], done
    assert list(elsewhere.iterdir()) == []
