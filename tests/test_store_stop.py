"""What a stop leaves on the disk: the database file alone holds every change."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from appliance.store import Item, ItemStore
from appliance.store.records import new_id


def _urls(path: Path) -> list[str]:
    with sqlite3.connect(path) as copy:
        return [url for (url,) in copy.execute("SELECT url FROM items ORDER BY url")]


def test_the_file_alone_holds_every_change_after_a_stop_whatever_thread_left_a_connection(
        tmp_path: Path) -> None:
    """A thread's connection left open at the stop (Pony keeps one per thread, closed when
    the thread ends) kept SQLite from folding its log in: a person who copied appliance.db
    while the service was stopped had a database without the last changes."""
    database = tmp_path / "appliance.db"
    store = ItemStore(database)
    store.insert([Item(id=new_id(), url="http://x.invalid/first", created_at=store.stamp())])
    read, leave = threading.Event(), threading.Event()

    def reader() -> None:  # a request thread still alive at the stop
        store.get("nothing")
        read.set()
        leave.wait(30)

    holder = threading.Thread(target=reader, daemon=True)
    holder.start()
    try:
        assert read.wait(30)
        store.insert([Item(id=new_id(), url="http://x.invalid/last", created_at=store.stamp())])
        store.close()
        copied = tmp_path / "copy" / "appliance.db"
        copied.parent.mkdir()
        shutil.copyfile(database, copied)  # the file only, as `cp appliance.db …` takes it
    finally:
        leave.set()
        holder.join(30)
    assert _urls(copied) == ["http://x.invalid/first", "http://x.invalid/last"]
    wal = database.with_name(database.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_log_that_cannot_be_folded_in_at_the_stop_is_said_and_kept(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Another program writing at that moment: the stop does not wait for it long, and the
    log stays for the next start to read."""
    database = tmp_path / "appliance.db"
    store = ItemStore(database)
    store.insert([Item(id=new_id(), url="http://x.invalid/kept", created_at=store.stamp())])
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with caplog.at_level(logging.WARNING, logger="appliance.store.database"):
            store.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    [said] = [r.getMessage() for r in caplog.records]
    assert "could not be folded into it at the stop" in said and "next start" in said
    assert _urls(database) == ["http://x.invalid/kept"]  # the log read back: nothing lost
