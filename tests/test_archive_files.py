"""An archive file the service cannot read or write -- its folder a file, a path that is a
folder, a full or read-only disk -- is named in the answer (503, 507 when the disk is full)
through every archive endpoint: each was a 500 that said nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from falcon.testing import TestClient
from support.mounts import fill, tmpfs
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.runtime import Runtime

Started = Callable[..., tuple[Runtime, TestClient]]


def _refused(response: object, status: int, path: Path, words: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    error = response.json["error"]  # type: ignore[attr-defined]
    assert error.startswith(f"The archive file {path} could not be used: {words}"), error
    assert error.endswith("Nothing was changed.")


def test_an_archive_that_is_a_folder_is_named_by_each_endpoint(
        app_with: Started, origin: MediaOrigin) -> None:
    rt, client = app_with(YTP_KEEP_ARCHIVE="true")
    added = client.simulate_post("/api/history", json={"url": origin.clip_url}).json[0]
    item = wait_for(lambda: (i := client.simulate_get(f"/api/history/{added['id']}").json)
                    ["kind"] == "done" and i, timeout=90, message="the download's end")
    assert item["status"] == "finished", item
    archive = rt.settings.config_path / "archive.txt"
    archive.unlink()
    archive.mkdir()
    body = {"preset": "default", "items": ["youtube a"]}
    for response in (client.simulate_get("/api/archiver", params={"preset": "default"}),
                     client.simulate_post("/api/archiver", json=body),
                     client.simulate_delete("/api/archiver", json=body),
                     client.simulate_post(f"/api/history/{item['id']}/archive"),
                     client.simulate_delete(f"/api/history/{item['id']}/archive")):
        _refused(response, 503, archive, "Is a directory")
    assert response.json["code"] == "UNAVAILABLE"
    assert list(archive.iterdir()) == []


def test_a_presets_archive_in_a_folder_that_is_a_file_is_named(app_with: Started) -> None:
    rt, client = app_with()
    preset = client.simulate_post("/api/presets", json={
        "name": "own", "cli": "--download-archive own.txt"})
    assert preset.status_code == 200, preset.text
    folder = rt.settings.config_path / "archives"
    folder.write_text("not a folder")
    added = client.simulate_post("/api/archiver", json={"preset": "own", "items": ["vimeo 1"]})
    _refused(added, 503, folder / "own.txt", f"File exists ({folder})")
    assert folder.read_text() == "not a folder"


@pytest.mark.parametrize(("options", "status", "words"), [
    ("size=64k", 507, "No space left on device"),
    ("ro,size=64k", 503, "Read-only file system"),
])
def test_an_archive_on_a_disk_that_refuses_the_write_is_named(
        app_with: Started, options: str, status: int, words: str) -> None:
    rt, client = app_with()
    assert client.simulate_post("/api/presets", json={
        "name": "own", "cli": "--download-archive own.txt"}).status_code == 200
    folder = rt.settings.config_path / "archives"
    with tmpfs(folder, options):
        if "ro" not in options.split(","):
            fill(folder)
        added = client.simulate_post("/api/archiver", json={"preset": "own",
                                                            "items": ["vimeo 1"]})
        _refused(added, status, folder / "own.txt", words)
        assert not (folder / "own.txt").exists()
        # reading an archive that is not there yet needs no write: an empty one
        read = client.simulate_get("/api/archiver", params={"preset": "own"})
        assert read.status_code == 200 and read.json["items"] == []


def test_an_archive_with_junk_lines_is_read_for_the_ids_asked(app_with: Started) -> None:
    """A line of one word (or of nothing but spaces) from a hand-edited archive: it matches
    no id, and the others are still found."""
    rt, client = app_with(YTP_KEEP_ARCHIVE="true")
    (rt.settings.config_path / "archive.txt").write_text("junk\n   \nyoutube abc\n\n")
    read = client.simulate_get("/api/archiver", params={"preset": "default", "ids": "abc"})
    assert read.status_code == 200, read.text
    assert read.json["items"] == ["youtube abc"] and read.json["count"] == 1
    junk = client.simulate_get("/api/archiver", params={"preset": "default", "ids": "junk"})
    assert junk.status_code == 200 and junk.json["items"] == ["junk"], junk.text
