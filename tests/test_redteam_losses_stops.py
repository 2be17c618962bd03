"""Red team, a download is never lost: the service stopped while a download's end waits for
the database (its disk full, a backup tool holding its lock).

The end was given up on at the stop, never stored, and announced all the same: 'completed'
told to clients and every notification target, its temporary folder removed; the next start
found the item as it was stored (running) and ended it again, told twice.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine import storing
from appliance.events import Event
from appliance.runtime import Runtime
from appliance.store import ItemStore, database


def _item_id(event: Event) -> Any:
    data = event.data if isinstance(event.data, dict) else {}
    return data.get("id") or (data.get("item") or {}).get("id")


def test_an_end_the_database_never_took_before_a_stop_is_not_announced(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(storing, "RETRY_SECONDS", 0.5)
    monkeypatch.setattr(origin, "slow_rate", 256 * 1024)
    rt = start_runtime()
    # a backup tool's lock, taken once the download's last state before its end is stored
    # (on its own thread, as that state is announced) and held past the stop
    shell = sqlite3.connect(rt.settings.database_file, isolation_level=None,
                            check_same_thread=False)
    held = threading.Event()
    said: list[tuple[str, Any]] = []
    watched: list[str] = []

    def watch(event: Event) -> None:
        said.append((event.name, _item_id(event)))
        if event.name == "item_updated" and not event.progress and not held.is_set() \
                and _item_id(event) in watched and event.data["status"] == "postprocessing":
            shell.execute("BEGIN IMMEDIATE")
            held.set()

    rt.bus.subscribe(watch)
    [slow] = rt.engine.add([{"url": origin.slow_url}])
    watched.append(slow.id)
    try:
        wait_for(lambda: (rt.engine.get(slow.id).downloaded_bytes or 0) > 0, timeout=60,
                 message="the download to begin")
        origin.slow_rate = 200_000_000
        # its end taken out of the queue, its write refused
        wait_for(lambda: held.is_set() and slow.id not in {
            i.id for i in rt.engine.queue_items()}, timeout=60, message="the download to end")
        rt.stop()
    finally:
        if held.is_set():
            shell.execute("ROLLBACK")
        shell.close()
    ended = {"item_completed", "item_moved", "log_success"}
    # the old code: item_completed, item_moved and log_success, the end never stored
    assert not [name for name, item_id in said if item_id == slow.id and name in ended]
    store = ItemStore(rt.settings.database_file)
    try:
        assert store.get(slow.id).kind == "queue"
    finally:
        store.close()
    assert (rt.settings.temp_path / slow.id).is_dir()  # kept for the next start

    again = start_runtime()
    done = wait_for(lambda: (i := again.engine.get(slow.id)).status == "finished" and i,
                    timeout=60, message="the next start to end it")
    assert (again.settings.download_path / done.filename).read_bytes() == \
        origin.path_for(origin.slow_url).read_bytes()
    assert not (again.settings.temp_path / slow.id).exists()
