"""Red team, a delete says exactly what it did: a running item deleted while the database
refuses writes (a backup tool holding its lock, its disk full).

The delete of a running item was answered "deleted" at once and stored at the run's end; that
write waited for the database, the service stopped meanwhile, and the delete was announced
all the same, its temporary folder removed. The next start found the item running in the
database and downloaded it again, whole: the item deleted came back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine import storing
from appliance.events import Event
from appliance.runtime import Runtime
from appliance.store import ItemStore, database


def _item_id(event: Event) -> Any:
    data = event.data if isinstance(event.data, dict) else {}
    return data.get("id") or (data.get("item") or {}).get("id")


def test_a_running_items_delete_the_database_refuses_is_refused_and_never_said(
        app_with: Callable[..., tuple[Runtime, TestClient]],
        start_runtime: Callable[..., Runtime], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(storing, "RETRY_SECONDS", 0.5)
    monkeypatch.setattr(origin, "slow_rate", 256 * 1024)
    rt, client = app_with()
    said: list[tuple[str, Any]] = []
    rt.bus.subscribe(lambda event: said.append((event.name, _item_id(event))))
    [slow] = rt.engine.add([{"url": origin.slow_url}])
    wait_for(lambda: (rt.engine.get(slow.id).downloaded_bytes or 0) > 0, timeout=60,
             message="the download to begin")
    shell = sqlite3.connect(rt.settings.database_file, isolation_level=None)
    try:
        shell.execute("BEGIN IMMEDIATE")  # a backup tool's lock, held past the stop
        answer = client.simulate_delete("/api/history", json={"type": "queue",
                                                              "ids": [slow.id]})
        # the old code: 200 {"<id>": "deleted"}, stored nowhere
        assert answer.status_code == 503, answer.text
        assert "another program holds a lock on it" in answer.json["error"], answer.json
        assert rt.engine.get(slow.id).status == "downloading"  # left as it was
        rt.stop()
    finally:
        shell.execute("ROLLBACK")
        shell.close()
    # the old code: item_deleted at the stop, the item still in the database
    assert ("item_deleted", slow.id) not in said
    store = ItemStore(rt.settings.database_file)
    try:
        assert store.get(slow.id).kind == "queue"
    finally:
        store.close()

    # The next start goes on with it, as nothing was deleted; once deleted, it is gone.
    monkeypatch.setattr(origin, "slow_rate", 64 * 1024)
    again = start_runtime()
    said.clear()
    again.bus.subscribe(lambda event: said.append((event.name, _item_id(event))))
    wait_for(lambda: again.engine.get(slow.id).status == "downloading", timeout=60,
             message="the next start to resume it")
    assert again.engine.delete_items([slow.id]) == {slow.id: "deleted"}
    assert again.store.get(slow.id) is None  # stored before it is answered
    wait_for(lambda: slow.id not in again.engine._runs, timeout=30,
             message="the run to end")
    assert [name for name, item_id in said if item_id == slow.id
            and name in {"item_deleted", "item_moved", "item_completed"}] == ["item_deleted"]
    assert not (again.settings.temp_path / slow.id).exists()
    assert again.engine.get(slow.id) is None
