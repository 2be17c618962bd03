"""A chain of a thousand symlinks in the download folder (anyone who can write there can make
one; the system follows 40 at most): Python 3.11's realpath followed it by recursion, and its
RecursionError ended the file index's first scan (its thread with it: the folder never
indexed), and made a 500 of every route that met it, an item's delete too. Such a link leads
nowhere now, as the system says: left out of the index, 404 to a request, deleted as a link.
On a real runtime in process."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import runtime_of_module
from falcon.testing import TestClient
from support.browsing import LISTED_DEADLINE, act
from support.server import wait_for

from appliance.api.app import create_app
from appliance.engine.containment import Containment
from appliance.errors import AppError
from appliance.files.index import FileIndex
from appliance.path_limits import real_path
from appliance.runtime import Runtime
from appliance.store import Item
from appliance.store.records import new_id
from appliance.tasks.metadata import contained_folder

LENGTH = 1200


def chain(folder: Path) -> None:
    """``folder``/l0000 → target.mp4, l0001 → l0000, … l1199 → l1198."""
    folder.mkdir()
    (folder / "target.mp4").write_bytes(b"the target")
    previous = "target.mp4"
    for n in range(LENGTH):
        os.symlink(previous, folder / f"l{n:04d}")
        previous = f"l{n:04d}"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    for runtime in runtime_of_module(tmp_path_factory, "chains", YTP_REMOVE_FILES="true",
                                     YTP_BROWSER_CONTROL_ENABLED="true"):
        yield runtime, TestClient(create_app(runtime))


def test_the_index_leaves_a_chain_too_long_to_follow_out(tmp_path: Path) -> None:
    chain(tmp_path / "chain")
    index = FileIndex(tmp_path)
    index.rescan()
    names = set(index.names("chain"))
    assert {"target.mp4", "l0000", "l0038"} <= names
    assert "l1199" not in names and "l0040" not in names


def test_routes_answer_404_and_the_links_are_deleted_as_links(
        app: tuple[Runtime, TestClient]) -> None:
    runtime, client = app
    folder = runtime.settings.download_path / "chain"
    chain(folder)
    wait_for(lambda: "l0000" in {e["name"] for e in client.simulate_get(
        "/api/file/browser/chain", params={"search": "l0000"}).json["contents"]},
        LISTED_DEADLINE, message="the chain's folder to be listed")
    for route in ("/api/file/info/chain/l1199", "/api/download/chain/l1199",
                  "/api/player/playlist/chain/l1199.m3u8"):
        answer = client.simulate_get(route)
        assert answer.status_code == 404, (route, answer.text)
        assert answer.json["error"] == ("'chain/l1199' leads through more links than the "
                                        "system follows (or a loop of links)."), route
    made = act(client, {"action": "directory", "path": "chain", "new_dir": "l1199/sub"})
    assert made.status_code == 200, made.text
    assert (made.json[0]["ok"], made.json[0]["error"]) == (
        False, "Too many levels of symbolic links"), made.text
    deleted = act(client, {"action": "delete", "path": "chain/l1199"})
    assert deleted.json[0]["ok"] is True, deleted.text
    assert not os.path.lexists(folder / "l1199")

    item = Item(id=new_id(), url="http://x.invalid/x", kind="done", status="finished",
                title="x", filename="chain/l1198", file_size=10,
                download_folder=str(runtime.settings.download_path),
                created_at=runtime.store.stamp())
    runtime.store.insert([item])
    answer = client.simulate_delete("/api/history", json={
        "type": "done", "ids": [item.id], "remove_file": True})
    assert answer.json == {item.id: "deleted"}, answer.text
    assert os.path.lexists(folder / "l1198")
    assert (folder / "target.mp4").read_bytes() == b"the target"


def test_a_chain_the_system_did_not_reach_is_refused_too(tmp_path: Path) -> None:
    """The system stops at the missing folder (ENOENT) where Python's realpath reads ``..``
    as text and walks on into the chain: refused as the system refuses a chain (ELOOP)."""
    chain(tmp_path / "chain")
    path = tmp_path / "chain" / "missing" / ".." / "l1199"
    with pytest.raises(OSError) as refused:
        real_path(path)
    assert refused.value.errno == errno.ELOOP
    assert refused.value.filename == str(path)  # named, as the system names its refusals
    assert real_path(tmp_path / "chain" / "l0000") == str(tmp_path / "chain" / "target.mp4")


def test_a_job_may_not_write_through_a_chain_too_long_to_follow(tmp_path: Path) -> None:
    """The download process's containment followed the chain by recursion too: its
    RecursionError, out of the audit hook, failed the download with a traceback's words."""
    chain(tmp_path / "chain")
    (tmp_path / "temp").mkdir()
    job = Containment(str(tmp_path), str(tmp_path / "temp"))
    assert job.holds(str(tmp_path / "chain" / "l0010"))
    assert not job.holds(str(tmp_path / "chain" / "l1199"))
    assert not job.allows(str(tmp_path / "chain" / "l1199"))


def test_a_tasks_folder_through_a_chain_too_long_to_follow_is_refused(tmp_path: Path) -> None:
    """Its channel files' folder: a 400 that says why, where it was a 500."""
    chain(tmp_path / "chain")
    with pytest.raises(AppError) as refused:
        contained_folder(tmp_path, tmp_path / "chain" / "l1199" / "show")
    assert refused.value.status == 400
    assert refused.value.message == ("The task's folder cannot be followed: Too many levels "
                                     "of symbolic links.")
