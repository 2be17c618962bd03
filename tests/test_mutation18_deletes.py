"""A delete of a waiting item does what it says (planted bugs in engine/deleting.py that
survived the suite, round mutation18): one the database refuses leaves the item in the queue
to start, and one that comes as the item starts stops its download and takes it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine.engine import DownloadEngine
from appliance.events import Event
from appliance.runtime import Runtime
from appliance.store import Item, database
from appliance.store.records import DONE, ERROR, FINISHED, new_id


def _waiting(rt: Runtime, url: str) -> Item:
    """An item held (auto_start false), its info read and stored."""
    [added] = rt.engine.add([{"url": url, "auto_start": False}])
    return wait_for(lambda: (i := rt.engine.get(added.id)) and i.extractor
                    and rt.store.get(added.id).extractor and i, timeout=60, message="its info")


def _ends(said: list[Event], item_id: str) -> list[str]:
    return [e.name for e in said if isinstance(e.data, dict) and e.data.get("id") == item_id
            and e.name in {"item_deleted", "item_moved", "item_completed"}]


def test_a_waiting_items_delete_the_database_refuses_leaves_it_in_the_queue_to_start(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 200)
    rt, client = app_with()
    item = _waiting(rt, origin.clip_url)
    shell = sqlite3.connect(rt.settings.database_file, isolation_level=None)
    try:
        shell.execute("BEGIN IMMEDIATE")  # a backup tool's lock
        answer = client.simulate_delete("/api/history", json={"type": "queue",
                                                              "ids": [item.id]})
        assert answer.status_code == 503, answer.text
        assert "another program holds a lock on it" in answer.json["error"], answer.json
    finally:
        shell.execute("ROLLBACK")
        shell.close()
    queue = client.simulate_get("/api/history", params={"type": "queue"}).json
    assert [i["id"] for i in queue["items"]] == [item.id], queue
    # still the queue's: started, it downloads
    assert rt.engine.start_items([item.id]) == {item.id: "started"}
    done = wait_for(lambda: (i := rt.engine.get(item.id)) and i.status == "finished" and i,
                    timeout=90, message="the item to finish")
    assert (rt.settings.download_path / done.filename).is_file()


def test_a_delete_that_comes_as_a_waiting_item_starts_stops_its_download_and_takes_it(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete finds the item waiting, and it has started when the delete takes it out of
    the queue: the running item's delete is the one to do (its run stopped, its row gone)."""
    rt, client = app_with()
    item = _waiting(rt, origin.stall_url())
    said: list[Event] = []
    rt.bus.subscribe(said.append)
    drop = DownloadEngine._drop

    def started_meanwhile(engine: DownloadEngine, waiting: Item) -> Any:
        assert engine.start_items([waiting.id]) == {waiting.id: "started"}
        wait_for(lambda: (r := engine._runs.get(waiting.id)) and r.worker
                 and r.item.status == "downloading", timeout=60, message="the download to run")
        return drop(engine, waiting)

    monkeypatch.setattr(DownloadEngine, "_drop", started_meanwhile)
    answer = client.simulate_delete("/api/history", json={"type": "queue", "ids": [item.id]})
    assert answer.status_code == 200, answer.text
    assert answer.json == {item.id: "deleted"}
    assert rt.store.get(item.id) is None  # stored before it is answered
    wait_for(lambda: item.id not in rt.engine._runs, timeout=30, message="the run to end")
    assert rt.engine.get(item.id) is None
    assert _ends(said, item.id) == ["item_deleted"]
    assert [e.data for e in said if e.name == "item_deleted"] == [{"id": item.id,
                                                                  "_id": item.id}]
    assert not (rt.settings.temp_path / item.id).exists()


def test_waiting_items_deleted_at_once_go_each_said_to_clients_by_both_its_ids(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin) -> None:
    """YTPTube's clients know an item by ``_id``: a delete said without it left the item on
    their screens."""
    rt, client = app_with()
    items = [_waiting(rt, origin.clip_url), _waiting(rt, origin.clip2_url)]
    ids = [item.id for item in items]
    said: list[Event] = []
    rt.bus.subscribe(said.append)
    answer = client.simulate_delete("/api/history", json={"type": "queue", "ids": ids})
    assert answer.json == dict.fromkeys(ids, "deleted"), answer.text
    assert [e.data for e in said if e.name == "item_deleted"] == [
        {"id": item_id, "_id": item_id} for item_id in ids]
    for item_id in ids:
        assert rt.engine.get(item_id) is None and rt.store.get(item_id) is None


def test_a_running_item_that_ends_as_its_delete_comes_is_deleted_with_its_file(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete finds the item running, and its download has ended 'finished' when the
    delete reaches the database: the row is the history's now, deleted as such, its file
    with it."""
    monkeypatch.setattr(origin, "slow_rate", 64 * 1024)
    rt, client = app_with(YTP_REMOVE_FILES="true")
    [item] = rt.engine.add([{"url": origin.slow_url}])
    wait_for(lambda: (r := rt.engine._runs.get(item.id)) and r.worker
             and (r.item.downloaded_bytes or 0) > 0, timeout=60, message="the download to run")
    said: list[Event] = []
    rt.bus.subscribe(said.append)
    delete_running = DownloadEngine._delete_running

    def ended_meanwhile(engine: DownloadEngine, running: Item, *args: Any) -> Any:
        monkeypatch.setattr(origin, "slow_rate", 1 << 30)  # the rest at once
        wait_for(lambda: (s := rt.store.get(running.id)) and s.kind == DONE
                 and s.status == "finished", timeout=90, message="the download to end")
        return delete_running(engine, running, *args)

    monkeypatch.setattr(DownloadEngine, "_delete_running", ended_meanwhile)
    answer = client.simulate_delete("/api/history", json={
        "type": "queue", "ids": [item.id], "remove_file": True})
    assert answer.status_code == 200, answer.text
    assert answer.json == {item.id: "deleted"}
    assert rt.store.get(item.id) is None and rt.engine.get(item.id) is None
    assert [p.name for p in rt.settings.download_path.iterdir()
            if not p.name.startswith(".")] == []
    assert _ends(said, item.id) == ["item_completed", "item_deleted"]


def test_a_delete_of_several_with_files_keeps_just_the_one_a_finished_item_records_too(
        app_with: Callable[..., tuple[Runtime, TestClient]],
        caplog: pytest.LogCaptureFixture) -> None:
    """Three deleted at once with their files: one whose name only a failed item recorded
    too (where its file would have been: no file of that item's), one nobody else recorded,
    one a finished item records too. Only the last stays, the answer saying why."""
    caplog.set_level(logging.INFO, logger="appliance.engine")
    rt, client = app_with(YTP_REMOVE_FILES="true")
    folder = rt.settings.download_path

    def recorded(name: str, status: str = FINISHED) -> Item:
        file = folder / name
        if not file.exists():
            file.write_bytes(name.encode())
        return Item(id=new_id(), url=f"http://example.invalid/{name}", title=name, kind=DONE,
                    status=status, filename=name,
                    file_size=file.stat().st_size if status == FINISHED else None,
                    download_folder=str(folder), created_at=rt.store.stamp())

    own, failed = recorded("Own.mp4"), recorded("Own.mp4", ERROR)
    solo, shared, holder = recorded("Solo.mp4"), recorded("Shared.mp4"), recorded("Shared.mp4")
    rt.store.insert([own, failed, solo, shared, holder])
    said: list[Event] = []
    rt.bus.subscribe(said.append)
    answer = client.simulate_delete("/api/history", json={
        "type": "done", "ids": [own.id, solo.id, shared.id], "remove_file": True})
    assert answer.status_code == 200, answer.text
    assert answer.json == {
        own.id: "deleted", solo.id: "deleted", shared.id: "deleted",
        "files_kept": {shared.id: (
            "Its file 'Shared.mp4' was kept, with its sidecars: another item records it too "
            f"('Shared.mp4', {holder.id}). Delete that one with its files to remove it.")}}
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "Shared.mp4"]
    assert rt.store.get(holder.id).filename == "Shared.mp4"
    assert [e.data for e in said if e.name == "item_deleted"] == [
        {"id": i.id, "_id": i.id} for i in (own, solo, shared)]
    # the journal's line, for whoever wonders why the file is still there
    assert (f"not removing Shared.mp4 of item {shared.id}: item {holder.id} records it too"
            in caplog.messages)
