"""Files whose names are not UTF-8 (Latin-1 bytes an old tool or a copied Windows folder left) in
the file browser, on a real runtime with its watcher: listed, searched, renamed, moved, deleted
and zipped, named everywhere by their bytes percent-encoded (``caf%E9.mp4``) as the player's
URLs name them (files.names). Before, the browser left them out: a copied folder looked empty.
And the forms of such a name that must never lead anywhere else: a percent-encoded separator,
NUL, overlong UTF-8, a lone surrogate."""

from __future__ import annotations

import io
import os
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import pytest
from conftest import runtime_of_module
from falcon.testing import Result, TestClient
from support.browsing import LISTED_DEADLINE, act, assert_error, new_folder
from support.server import wait_for

from appliance.api.app import create_app
from appliance.runtime import Runtime
from appliance.store import Item
from appliance.store.records import new_id

CAFE = b"caf\xe9"  # "café" as Windows-1252 and Latin-1 write it


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    for runtime in runtime_of_module(tmp_path_factory, "latin1",
                                     YTP_BROWSER_CONTROL_ENABLED="true"):
        yield runtime, TestClient(create_app(runtime))


@pytest.fixture
def folder(app: tuple[Runtime, TestClient]) -> Iterator[Path]:
    yield from new_folder(*app)


def make(folder: Path, name: bytes, data: bytes = b"x") -> bytes:
    path = os.fsencode(folder) + b"/" + name
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def sent(client: TestClient, url: str, **params: Any) -> Result:
    """``url`` (percent-encoded) as a WSGI server hands it over: its path's bytes, decoded
    from the percent signs, tunneled as Latin-1 (PEP 3333)."""
    return client.simulate_get("/", params=params or None, extras={
        "PATH_INFO": unquote_to_bytes(url).decode("latin-1")})


def entries(client: TestClient, url: str, **params: Any) -> dict[str, dict[str, Any]]:
    result = sent(client, url, **params)
    assert result.status_code == 200, result.text
    return {e["name"]: e for e in result.json["contents"]}


def listed(client: TestClient, url: str, expected: set[str]) -> None:
    wait_for(lambda: set(entries(client, url)) == expected, LISTED_DEADLINE,
             message=f"{url} to list {sorted(expected)}")


def test_they_are_listed_by_their_bytes_and_found_by_a_search(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    runtime, client = app
    base = folder.name
    make(folder, CAFE + b".mp4", b"video")
    os.mkdir(os.fsencode(folder) + b"/Fotos \xe9t\xe9")
    make(folder, b"Fotos \xe9t\xe9/plage \xe0 midi.jpg")
    make(folder, "café.txt".encode())  # the same name in UTF-8: another file
    listed(client, f"/api/file/browser/{base}", {"caf%E9.mp4", "Fotos %E9t%E9", "café.txt"})
    found = entries(client, f"/api/file/browser/{base}")
    assert found["caf%E9.mp4"]["path"] == f"{base}/caf%E9.mp4"
    assert found["caf%E9.mp4"]["size"] == 5 and found["caf%E9.mp4"]["content_type"] == "video"
    assert found["Fotos %E9t%E9"]["is_dir"] is True
    # the folder by the URL a client makes of its path: its bytes (the player's form), or
    # the path as JSON gave it, encoded again (``%25E9``)
    for url in (f"/api/file/browser/{base}/Fotos%20%E9t%E9",
                f"/api/file/browser/{base}/{quote('Fotos %E9t%E9')}"):
        inside = sent(client, url)
        assert inside.status_code == 200, inside.text
        assert inside.json["path"] == f"{base}/Fotos %E9t%E9"
        assert [e["path"] for e in inside.json["contents"]] == [
            f"{base}/Fotos %E9t%E9/plage %E0 midi.jpg"]
    # a search finds it as people read it, and as the API writes it
    for needle, expected in (("café", {"caf%E9.mp4", "café.txt"}), ("ÉTÉ", {"Fotos %E9t%E9"}),
                             ("caf%e9", {"caf%E9.mp4"})):
        assert set(entries(client, f"/api/file/browser/{base}", search=needle)) == expected
    info = client.simulate_get(f"/api/file/info/{base}/{quote('caf%E9.mp4')}")
    assert info.status_code == 200, info.text
    assert info.json["title"] == "caf%E9"
    assert runtime.files.index.names(base)


def test_renamed_moved_zipped_and_deleted_end_to_end(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    runtime, client = app
    base = folder.name
    make(folder, CAFE + b".mp4", b"video")
    make(folder, CAFE + b".en.srt", b"1\n00:00:01,000 --> 00:00:02,000\nhi\n")
    make(folder, b"r\xe9sum\xe9.txt", b"cv")
    os.mkdir(os.fsencode(folder) + b"/\xc9t\xe9")
    listed(client, f"/api/file/browser/{base}",
           {"caf%E9.mp4", "caf%E9.en.srt", "r%E9sum%E9.txt", "%C9t%E9"})

    # zipped, named in the archive as people read them, its sidecar along
    prepared = client.simulate_post("/api/file/download",
                                    json=[f"{base}/caf%E9.mp4", f"{base}/r%E9sum%E9.txt"])
    assert prepared.status_code == 200, prepared.text
    assert prepared.json["files"] == [f"{base}/caf%E9.mp4", f"{base}/caf%E9.en.srt",
                                      f"{base}/r%E9sum%E9.txt"]
    archive = client.simulate_get(f"/api/file/download/{prepared.json['token']}")
    assert archive.status_code == 200, archive.text
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        assert zipped.namelist() == [f"{base}/café.mp4", f"{base}/café.en.srt",
                                     f"{base}/résumé.txt"]
        assert zipped.read(f"{base}/café.mp4") == b"video"

    done = act(client,
               {"action": "rename", "path": f"{base}/caf%E9.mp4", "new_name": "café.mp4"},
               {"action": "move", "path": f"{base}/r%E9sum%E9.txt", "new_path": f"{base}/%C9t%E9"},
               {"action": "rename", "path": f"{base}/café.mp4", "new_name": "caf%E9.mp4"})
    assert done.status_code == 200, done.text
    assert [(r["ok"], r.get("new_path")) for r in done.json] == [
        (True, f"{base}/café.mp4"), (True, f"{base}/%C9t%E9/r%E9sum%E9.txt"),
        # a new name is taken as typed: the service never makes a name that is not UTF-8
        (True, f"{base}/caf%E9.mp4")]
    assert done.json[0]["sidecar_count"] == 1
    on_disk = sorted(os.listdir(os.fsencode(folder)))
    assert on_disk == sorted([b"caf%E9.mp4", b"caf%E9.en.srt", b"\xc9t\xe9"])
    assert os.listdir(os.fsencode(folder) + b"/\xc9t\xe9") == [b"r\xe9sum\xe9.txt"]
    # the literal "caf%E9.mp4" is the one its path names, not the bytes it encodes
    make(folder, CAFE + b".mp4", b"bytes")
    listed(client, f"/api/file/browser/{base}",
           {"caf%E9.mp4", "caf%E9.en.srt", "%C9t%E9"})
    both = act(client, {"action": "delete", "path": f"{base}/caf%E9.mp4"})
    assert_error(both, 409)
    assert both.json["error"] == ("'caf%E9.mp4' names two entries: one named so, and one whose "
                                  "name is these bytes (not UTF-8). Rename one of them on the "
                                  "disk.")
    os.unlink(os.fsencode(folder) + b"/caf%E9.mp4")

    gone = act(client, {"action": "delete", "path": f"{base}/%C9t%E9"},
               {"action": "delete", "path": f"{base}/caf%E9.mp4"})
    assert [r["ok"] for r in gone.json] == [True, True], gone.text
    assert sorted(os.listdir(os.fsencode(folder))) == [b"caf%E9.en.srt"]
    listed(client, f"/api/file/browser/{base}", {"caf%E9.en.srt"})
    assert runtime.files.index.names(base) == ["caf%E9.en.srt"]


@pytest.mark.parametrize("path", [
    pytest.param("caf%E9%2F..%2F..%2Fetc", id="slash"),  # a slash once decoded
    pytest.param("caf%E9%5C..", id="backslash"),  # a backslash
    pytest.param("caf%E9%00.mp4", id="control byte"),  # NUL
    pytest.param("%C0%AE%C0%AE", id="overlong dots"),  # ".." in overlong UTF-8
    pytest.param("%C0%AF%E9", id="overlong slash"),  # "/"
    pytest.param("%ED%B3%A9", id="surrogate"),  # a lone surrogate written as UTF-8
])
def test_an_encoded_name_never_leads_elsewhere(app: tuple[Runtime, TestClient], folder: Path,
                                               path: str) -> None:
    _, client = app
    base = folder.name
    make(folder, b"keep.txt")
    for result in (act(client, {"action": "delete", "path": f"{base}/{path}"}),
                   act(client, {"action": "move", "path": f"{base}/keep.txt",
                                "new_path": f"{base}/{path}"}),
                   client.simulate_post("/api/file/download", json=[f"{base}/{path}"]),
                   sent(client, f"/api/file/browser/{base}/{quote(path)}")):
        assert_error(result, 400)
        assert result.json["error"] == (
            f"'{path}' percent-encodes a separator, a control byte or a form of UTF-8 that is "
            "not allowed (overlong, a surrogate).")
    assert os.listdir(folder) == ["keep.txt"]
    assert os.path.exists(folder.parent.parent / "config")  # nothing above was touched


def test_a_lone_surrogate_in_json_is_refused(app: tuple[Runtime, TestClient],
                                             folder: Path) -> None:
    """JSON may write a lone surrogate (``\\udce9``): it is no name's byte (those travel
    percent-encoded), and the body is refused whole."""
    _, client = app
    make(folder, CAFE + b".mp4")
    body = ('[{"action": "delete", "path": "' + folder.name + '/caf\\udce9.mp4"}]').encode()
    result = client.simulate_post("/api/file/actions", body=body,
                                  headers={"Content-Type": "application/json"})
    assert_error(result, 400)
    assert os.listdir(os.fsencode(folder)) == [CAFE + b".mp4"]


def test_the_index_follows_them_changed_behind_its_back(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    _, client = app
    base = folder.name
    url = f"/api/file/browser/{base}"
    os.mkdir(os.fsencode(folder) + b"/\xe9t\xe9")
    make(folder, b"\xe9t\xe9/plage.jpg")
    listed(client, url, {"%E9t%E9"})
    listed(client, f"{url}/%E9t%E9", {"plage.jpg"})
    os.rename(os.fsencode(folder) + b"/\xe9t\xe9", os.fsencode(folder) + b"/hiver \xe9")
    listed(client, url, {"hiver %E9"})
    listed(client, f"{url}/hiver%20%E9", {"plage.jpg"})
    assert sent(client, f"{url}/%E9t%E9").status_code == 404
    os.unlink(os.fsencode(folder) + b"/hiver \xe9/plage.jpg")
    listed(client, f"{url}/hiver%20%E9", set())


def test_a_search_finds_a_name_whatever_its_unicode_normal_form(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    """macOS writes names decomposed (NFD: ``e`` and a combining accent), what people type is
    composed (NFC): a search for "café" found no file a Mac had copied, and one for "Zoë" typed
    on a Mac found none written elsewhere."""
    _, client = app
    base = folder.name
    decomposed, composed = unicodedata.normalize("NFD", "café.mp4"), "zoë.mp4"
    make(folder, decomposed.encode())
    make(folder, composed.encode())
    listed(client, f"/api/file/browser/{base}", {decomposed, composed})
    for needle, expected in (("CAFÉ", decomposed), (unicodedata.normalize("NFD", "Zoë"), composed)):
        assert set(entries(client, f"/api/file/browser/{base}", search=needle)) == {expected}


def test_a_long_latin1_name_is_measured_by_its_bytes(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    """200 bytes on the disk, 400 characters percent-encoded: every action on it was refused
    as "a name longer than 255 bytes" (the limit was measured on the encoded form)."""
    _, client = app
    base = folder.name
    long_name = b"\xe9t\xe9 " * 50  # 200 bytes, 100 of them accented
    make(folder, long_name + b".txt")
    encoded = quote(long_name + b".txt", safe=" ")
    assert len(encoded) > 255
    listed(client, f"/api/file/browser/{base}", {encoded})
    done = act(client, {"action": "rename", "path": f"{base}/{encoded}", "new_name": "short.txt"})
    assert done.status_code == 200 and done.json[0]["ok"], done.text
    assert os.listdir(folder) == ["short.txt"]
    # still refused past the system's limit on its bytes
    refused = act(client, {"action": "delete", "path": f"{base}/{'%E9' * 256}"})
    assert_error(refused, 400)
    assert "longer than 255 bytes" in refused.json["error"]


def test_an_item_follows_its_file_into_a_latin1_folder_and_out(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    """The history names the file as the API does (``F%E9/x.mp4``); every route reads it back,
    and the item follows it out again and says when it is deleted."""
    runtime, client = app
    base = folder.name
    make(folder, b"x.mp4", b"video")
    os.mkdir(os.fsencode(folder) + b"/\xc9t\xe9")
    item = Item(id=new_id(), url="http://x.invalid/x", kind="done", status="finished",
                title="x", filename=f"{base}/x.mp4", file_size=5,
                download_folder=str(runtime.settings.download_path),
                created_at=runtime.store.stamp())
    runtime.store.insert([item])
    moved = act(client, {"action": "move", "path": f"{base}/x.mp4", "new_path": f"{base}/%C9t%E9"})
    assert moved.json[0]["ok"], moved.text
    now = client.simulate_get(f"/api/history/{item.id}")
    assert now.status_code == 200, now.text
    assert now.json["filename"] == f"{base}/%C9t%E9/x.mp4"
    fetched = client.simulate_get(f"/api/download/{quote(now.json['filename'])}")
    assert fetched.status_code == 200 and fetched.content == b"video"
    back = act(client, {"action": "rename", "path": f"{base}/%C9t%E9", "new_name": "Été"})
    assert back.json[0]["ok"], back.text
    assert client.simulate_get(f"/api/history/{item.id}").json["filename"] == f"{base}/Été/x.mp4"
    gone = act(client, {"action": "delete", "path": f"{base}/Été"})
    assert gone.json[0]["ok"], gone.text
    after = client.simulate_get(f"/api/history/{item.id}").json
    assert (after["filename"], after["msg"]) == (
        "", f"Its file was deleted in the file browser ('{base}/Été').")


def test_what_lies_outside_is_never_told_by_a_conflict(
        app: tuple[Runtime, TestClient], folder: Path, tmp_path: Path) -> None:
    """Two entries a name could stand for, outside the folder through a symlink: 403 as for
    any path that leads out, not the 409 that would say they are there."""
    _, client = app
    make(tmp_path, b"caf%E9.mp4")
    make(tmp_path, CAFE + b".mp4")
    (folder / "out").symlink_to(tmp_path)
    for result in (act(client, {"action": "delete", "path": f"{folder.name}/out/caf%E9.mp4"}),
                   client.simulate_post("/api/file/download",
                                        json=[f"{folder.name}/out/caf%E9.mp4"])):
        assert_error(result, 403)
    assert sorted(os.listdir(os.fsencode(tmp_path))) == sorted([b"caf%E9.mp4", CAFE + b".mp4"])


def test_a_percent_sign_in_a_name_travels_either_way(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    """In a Latin-1 name the sign itself is encoded (``%25``); in a UTF-8 name it is as it is,
    also where what follows it looks like an encoding (``a%20b``, ``100%25``)."""
    _, client = app
    base = folder.name
    make(folder, b"100%\xe9.txt", b"latin")
    for name in ("a%20b.txt", "100%25.txt", "caf%C3%A9.txt"):
        make(folder, name.encode(), name.encode())
    expected = {"100%25%E9.txt", "a%20b.txt", "100%25.txt", "caf%C3%A9.txt"}
    listed(client, f"/api/file/browser/{base}", expected)
    prepared = client.simulate_post("/api/file/download", json=[f"{base}/{n}" for n in expected])
    assert prepared.status_code == 200, prepared.text
    archive = client.simulate_get(f"/api/file/download/{prepared.json['token']}")
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        assert {n: zipped.read(n) for n in zipped.namelist()} == {
            f"{base}/100%é.txt": b"latin", **{f"{base}/{n}": n.encode() for n in expected
                                              if n != "100%25%E9.txt"}}
    done = act(client, *({"action": "delete", "path": f"{base}/{n}"} for n in expected))
    assert [r["ok"] for r in done.json] == [True] * 4, done.text
    assert os.listdir(folder) == []


def test_a_byte_windows_1252_has_no_letter_for_is_a_replacement_mark(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    """0x81 is no letter in Windows-1252: a search and a zip read it as U+FFFD."""
    _, client = app
    base = folder.name
    make(folder, b"\x81bc.txt", b"odd")
    listed(client, f"/api/file/browser/{base}", {"%81bc.txt"})
    assert set(entries(client, f"/api/file/browser/{base}", search="\ufffdbc")) == {"%81bc.txt"}
    prepared = client.simulate_post("/api/file/download", json=[f"{base}/%81bc.txt"])
    archive = client.simulate_get(f"/api/file/download/{prepared.json['token']}")
    assert archive.status_code == 200, archive.text
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        assert zipped.namelist() == [f"{base}/\ufffdbc.txt"]
