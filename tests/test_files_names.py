"""Names in the download folder that are not valid UTF-8, through the real routes on a real
runtime. Latin-1 bytes (``b"short.\\xff.srt"``) are named by their bytes, percent-encoded
(``short.%FF.srt``: files.names; tests/test_files_latin1.py has the rest); bytes the API cannot
name (UTF-8's overlong forms, ``b"\\xc0\\xae"``, which lenient decoders read as ``.``) and
names with a control character or a backslash are left out of every listing, answer and event,
logged once each, and everything beside them works as before."""

from __future__ import annotations

import io
import logging
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import runtime_of_module
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance import events
from appliance.api.app import create_app
from appliance.files.index import SORTS, FileIndex
from appliance.runtime import Runtime
from appliance.store import Item
from appliance.store.records import new_id
from appliance.ws import frames

DEADLINE = 10.0


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    for runtime in runtime_of_module(tmp_path_factory, "names"):
        yield runtime, TestClient(create_app(runtime))


@pytest.fixture
def folder(app: tuple[Runtime, TestClient]) -> Iterator[Path]:
    runtime, _client = app
    path = runtime.settings.download_path / f"t{os.urandom(4).hex()}"
    path.mkdir()
    wait_for(lambda: runtime.files.index.has_folder(path.name), DEADLINE,
             message="the new folder to be indexed")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def bad(folder: Path, name: bytes) -> bytes:
    """Make a file named ``name`` (bytes, not valid UTF-8) in ``folder``; its path in bytes."""
    path = os.fsencode(folder) + b"/" + name
    with open(path, "wb") as handle:
        handle.write(b"x")
    return path


def indexed(runtime: Runtime, folder: Path, expected: set[str]) -> None:
    """Wait for ``expected`` to be indexed (what else is, the routes' answers show)."""
    wait_for(lambda: expected <= set(runtime.files.index.names(folder.name)), DEADLINE,
             message=f"{folder.name} to index {sorted(expected)}")


def unnamed_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "cannot name" in r.getMessage()]


def test_a_finished_item_beside_an_undecodable_name(
        app: tuple[Runtime, TestClient], folder: Path, origin: MediaOrigin,
        caplog: pytest.LogCaptureFixture) -> None:
    runtime, client = app
    caplog.set_level(logging.WARNING, logger="appliance.files.index")
    shutil.copyfile(origin.path_for(origin.clip_url), folder / "short.mp4")
    (folder / "short.en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nHi\n")
    bad(folder, b"short.\xff.srt")
    bad(folder, b"short.\xc0\xae.srt")
    indexed(runtime, folder, {"short.mp4", "short.en.srt", "short.\udcff.srt"})
    item = Item(id=new_id(), url="http://x.invalid/short", kind="done", status="finished",
                title="short", filename=f"{folder.name}/short.mp4",
                download_folder=str(runtime.settings.download_path),
                created_at=runtime.store.stamp())
    runtime.store.insert([item])
    subtitle = [{"file": f"{folder.name}/short.en.srt", "lang": "en", "name": "SRT (0) - en"},
                {"file": f"{folder.name}/short.%FF.srt", "lang": "und", "name": "SRT (1) - und"}]

    for kind in ("all", "done", "queue"):
        page = client.simulate_get("/api/history", params={"type": kind, "per_page": 100})
        assert page.status_code == 200, page.text
    rows = client.simulate_get("/api/history", params={"type": "done", "per_page": 100}).json
    [row] = [i for i in rows["items"] if i["id"] == item.id]
    assert row["sidecar"] == {"subtitle": subtitle}
    single = client.simulate_get(f"/api/history/{item.id}")
    assert single.status_code == 200 and single.json["sidecar"] == {"subtitle": subtitle}

    info = client.simulate_get(f"/api/file/info/{folder.name}/short.mp4")
    assert info.status_code == 200, info.text
    assert info.json["sidecar"]["subtitle"] == subtitle

    playlist = client.simulate_get(f"/api/player/playlist/{folder.name}/short.mp4.m3u8")
    assert playlist.status_code == 200, playlist.text
    assert playlist.text.count("TYPE=SUBTITLES") == 2 and "short.en.srt" in playlist.text

    prepared = client.simulate_post("/api/file/download", json=[f"{folder.name}/short.mp4"])
    assert prepared.status_code == 200, prepared.text
    expected = [f"{folder.name}/short.mp4", f"{folder.name}/short.en.srt",
                f"{folder.name}/short.%FF.srt"]
    assert prepared.json["files"] == expected
    archive = client.simulate_get(f"/api/file/download/{prepared.json['token']}")
    assert archive.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(archive.content)).namelist() == [
        *expected[:2], f"{folder.name}/short.\u00ff.srt"]  # as Windows-1252 reads it

    # one warning for the name, saying where it is and what to do, not one per rescan
    runtime.files.index.rescan()
    [warning] = [m for m in unnamed_warnings(caplog) if "short." in m]
    assert str(folder) in warning and repr(b"short.\xc0\xae.srt") in warning
    assert "rename it on the disk" in warning


@pytest.mark.parametrize("sort_by", SORTS)
def test_a_folder_holding_names_the_api_cannot_name_lists_the_rest(
        app: tuple[Runtime, TestClient], folder: Path, sort_by: str) -> None:
    runtime, client = app
    good = {f"file{i:02d}.txt" for i in range(7)} | {"sub"}
    for name in good - {"sub"}:
        (folder / name).write_bytes(b"x" * len(name))
    (folder / "sub").mkdir()
    bad(folder, b"bad\xc0\xaf.txt")
    os.mkdir(os.fsencode(folder) + b"/wsbad\xe0\x80\xaedir")
    bad(folder, b"wsbad\xe0\x80\xaedir/inside.txt")
    # names no request can reach (a control character is refused, a backslash a separator)
    for unreachable in (b"new\nline.txt", b"tab\there.txt", b"back\\slash.txt"):
        bad(folder, unreachable)
    # a symlink with a plain name leading to such a name: its target cannot be named either
    os.symlink(b"bad\xc0\xaf.txt", os.fsencode(folder) + b"/link.txt")
    indexed(runtime, folder, good)
    for order in ("asc", "desc"):
        seen: list[str] = []
        for page in (1, 2, 3):
            result = client.simulate_get(
                f"/api/file/browser/{folder.name}",
                params={"page": page, "per_page": 3, "sort_by": sort_by, "sort_order": order})
            assert result.status_code == 200, result.text
            seen += [e["name"] for e in result.json["contents"]]
        assert sorted(seen) == sorted(good)
    assert client.simulate_get(f"/api/file/info/{folder.name}/link.txt").status_code == 404
    assert client.simulate_get("/api/file/browser/").status_code == 200


def test_the_configurations_folders_leave_them_out(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    _runtime, client = app
    os.mkdir(os.fsencode(folder) + b"/wsbad\xffdir")
    (folder / "sub").mkdir()
    configuration = client.simulate_get("/api/system/configuration")
    assert configuration.status_code == 200, configuration.text
    listed = {f["path"] for f in configuration.json["folders"]}
    assert f"{folder.name}/sub" in listed
    assert not [p for p in listed if p.startswith(f"{folder.name}/wsbad")]


def test_a_renamed_file_is_found_again_under_a_latin1_name_by_its_bytes(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    runtime, client = app
    bad(folder, b"renamed \xff [abcdefghijk].mp4")
    bad(folder, b"other \xc0\xae [bcdefghijkl].mp4")
    indexed(runtime, folder, {"renamed \udcff [abcdefghijk].mp4"})
    result = client.simulate_get(f"/api/file/info/{folder.name}/clip [abcdefghijk].mp4")
    assert result.status_code == 302, result.text
    assert result.headers["Location"].endswith(
        f"/api/file/info/{folder.name}/renamed%20%FF%20%5Babcdefghijk%5D.mp4")
    # never to a name the API cannot name
    result = client.simulate_get(f"/api/file/info/{folder.name}/clip [bcdefghijkl].mp4")
    assert result.status_code == 404, result.text


def test_files_changed_events_carry_latin1_names_by_their_bytes(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    runtime, _client = app
    told: list[events.Event] = []
    unsubscribe = runtime.bus.subscribe(
        lambda e: told.append(e) if e.name == events.FILES_CHANGED else None)
    try:
        os.mkdir(os.fsencode(folder) + b"/wsbad\xffdir")
        bad(folder, b"wsbad\xffdir/inside.txt")
        bad(folder, b"loose\xff.txt")
        os.mkdir(os.fsencode(folder) + b"/never\xc0\xaedir")
        (folder / "after").mkdir()  # the marker: its event comes after theirs
        wait_for(lambda: any(f"{folder.name}/after" in e.data["folders"] for e in told),
                 DEADLINE, message="the marker folder's files_changed event")
    finally:
        unsubscribe()
    for event in told:
        assert frames.encode(event.envelope()) is not None, event
    said = {f for event in told for f in event.data["folders"]}
    assert f"{folder.name}/wsbad%FFdir" in said
    assert not [f for f in said if "never" in f]
    assert set(runtime.files.index.names(folder.name)) == {
        "after", "wsbad\udcffdir", "loose\udcff.txt"}


@pytest.mark.parametrize("stored", ["../x.mp4", "./x.mp4", "sub/./x.mp4", "sub//x.mp4",
                                    "/sub/x.mp4", "sub/../x.mp4", ""])
def test_a_stored_name_that_is_not_a_plain_path_finds_no_sidecars(tmp_path: Path,
                                                                  stored: str) -> None:
    """History answers carry the sidecars of each item's file, looked up by the name stored in
    its row (a hand edit of the database can make it anything). Only a plain relative path is
    looked up, also before the first index is read, when the names come from the disk:
    ``..`` would list the folder above the download folder, ``.`` names what no route does."""
    root = tmp_path / "downloads"
    (root / "sub").mkdir(parents=True)
    for folder in (tmp_path, root, root / "sub"):
        (folder / "x.mp4").write_bytes(b"x")
        (folder / "x.en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    index = FileIndex(root)  # not read yet
    assert not index.ready.is_set()
    assert index.sidecars_of([stored, "sub/x.mp4"]) == {
        stored: {},
        "sub/x.mp4": {"subtitle": [{"file": "sub/x.en.srt", "lang": "en",
                                    "name": "SRT (0) - en"}]},
    }
