"""Reads of a database damaged or gone behind the service: a file overwritten or cut short,
a disk unplugged. Each read was a 500 with a traceback in the log at every request; now a
503 that says what is wrong and what to do, logged once, and the same service answers again
once the file is good.

Pony keeps one connection per thread, and a connection that read the file before keeps its
pages: the reads here run on a thread that has not read it yet (gunicorn's threads take the
requests in turn, and a page not in a connection's cache is read from the file too).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import falcon.testing
import pytest
from support.mounts import removable, unplug

from appliance.runtime import Runtime
from appliance.store import Item
from appliance.store.records import new_id
from appliance.tasks.scheduler import TaskScheduler

READS = ("/api/history?type=done", "/api/history?type=done&search=clip",
         "/api/downloads", "/api/downloads?status=completed", "/api/downloads/batches",
         "/api/batches", "/api/tasks")


def on_a_new_thread(client: falcon.testing.TestClient, path: str, rt: Runtime
                    ) -> falcon.testing.Result:
    """``GET path`` from a thread that has no connection yet (and closes its own after)."""
    answer: list[Any] = []

    def get() -> None:
        try:
            answer.append(client.simulate_get(path))
        finally:
            rt.store.release_thread()

    thread = threading.Thread(target=get)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), f"GET {path} did not end"
    [result] = answer
    return result


def history(rt: Runtime, count: int) -> list[Item]:
    items = []
    for n in range(count):
        stamp = rt.store.stamp()
        items.append(Item(id=new_id(), url=f"https://media.example/clip{n}", kind="done",
                          status="finished", title=f"clip {n}", created_at=stamp,
                          updated_at=stamp, batch_id="b1" if n % 2 else "",
                          batch_name="a playlist" if n % 2 else ""))
    rt.store.insert(items)
    return items


def checkpointed(database: Path) -> None:
    """Every page in the database file itself (a page still in the write-ahead log is read
    from there, whatever the file holds)."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_database_damaged_behind_the_service_is_said_and_read_again_once_restored(
        app_with: Callable[..., tuple[Runtime, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    rt, client = app_with()
    items = history(rt, 400)
    database: Path = rt.settings.database_file
    folder = rt.settings.config_path
    checkpointed(database)
    good = database.read_bytes()
    with database.open("r+b") as file:  # every page after the header, garbage
        file.seek(100)
        file.write(b"\xa5" * (len(good) - 100))
    for path in (*READS, f"/api/history/{items[0].id}"):
        answer = on_a_new_thread(client, path, rt)
        assert answer.status_code == 503, (path, answer.text)
        assert answer.json["code"] == "UNAVAILABLE"
        assert answer.json["error"].startswith(f"The database in {folder} could not be read: ")
        assert "appliance db restore" in answer.json["error"], answer.json["error"]
        assert str(folder / "backups") in answer.json["error"]
    said = errors_logged(caplog)
    assert len(said) == 1, said
    assert "could not be read" in said[0] and "SQLite: " in said[0]
    database.write_bytes(good)  # a backup put back
    listed = on_a_new_thread(client, "/api/history?type=done&per_page=1000", rt)
    assert listed.status_code == 200, listed.text
    assert {i["id"] for i in listed.json["items"]} == {i.id for i in items}


def test_a_database_file_cut_short_is_said(
        app_with: Callable[..., tuple[Runtime, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    rt, client = app_with()
    history(rt, 2000)
    database: Path = rt.settings.database_file
    checkpointed(database)
    with database.open("r+b") as file:
        file.truncate(database.stat().st_size // 3)
    answer = on_a_new_thread(client, "/api/history?type=done&page=30&per_page=50", rt)
    assert answer.status_code == 503, answer.text
    assert "could not be read: the file is damaged" in answer.json["error"]


def test_a_database_whose_disk_went_is_said(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, Any]],
        caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "config"
    with removable(config, "size=16m") as plug:
        rt, client = app_with()
        history(rt, 10)
        unplug(config)
        try:
            answer = on_a_new_thread(client, "/api/history?type=done", rt)
            assert answer.status_code == 503, answer.text
            assert ("could not be read: the file is not the one the service opened (its disk "
                    "was unmounted") in answer.json["error"]
        finally:
            plug()
        answer = on_a_new_thread(client, "/api/history?type=done", rt)
        assert answer.status_code == 200, answer.text


def test_the_task_timers_say_a_database_they_cannot_read_once_while_it_lasts(
        app_with: Callable[..., tuple[Runtime, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    """A due task the scheduler could not read stayed due: its loop turned every MIN_SLEEP
    and logged a traceback at each turn (four a second) until the file was put back."""
    rt, _ = app_with()
    history(rt, 400)
    [task] = rt.tasks.store.create([{"name": "feed", "url": "https://media.example/feed",
                                     "timer": "0 3 * * *"}])
    database: Path = rt.settings.database_file
    checkpointed(database)
    good = database.read_bytes()
    clock = [time.time()]
    # The real store's reads, on this test's own thread (its connection reads the file anew).
    scheduler = TaskScheduler(rt.tasks.store.all, rt.tasks.store.some, lambda *_: None,
                              zone=lambda: ZoneInfo("UTC"), spread=lambda: 0.0,
                              concurrency=1, clock=lambda: clock[0])
    try:
        scheduler.changed(task, task["id"])
        clock[0] = (scheduler.next_run_at(task["id"]) or 0) + 1  # due
        with database.open("r+b") as file:
            file.seek(100)
            file.write(b"\xa5" * (len(good) - 100))
        caplog.clear()
        for _ in range(5):
            scheduler.step()
        from_timers = [r for r in caplog.records if r.name == "appliance.tasks.scheduler"]
        assert [r.levelno for r in from_timers] == [logging.WARNING], from_timers
        assert from_timers[0].exc_info is None  # words, not a traceback
        assert from_timers[0].getMessage().startswith(
            f"task timers wait until the database can be read again: The database in "
            f"{rt.settings.config_path} could not be read: ")
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
        database.write_bytes(good)  # a backup put back
        caplog.clear()


        def two_steps() -> None:  # (on a thread whose connection read no damaged page)
            try:
                scheduler.step()
                scheduler.step()
            finally:
                rt.store.release_thread()

        with caplog.at_level(logging.INFO, logger="appliance.tasks.scheduler"):
            thread = threading.Thread(target=two_steps)
            thread.start()
            thread.join(60)
        assert not thread.is_alive()
        assert [r.getMessage() for r in caplog.records
                if r.name == "appliance.tasks.scheduler"] == [
            "task timers run again: the database can be read"]
    finally:
        scheduler.stop()
        rt.store.release_thread()
