"""Every state of an item is stored before it is announced: whatever state a client sees on
the event stream, the database already holds (or holds a later one) at that moment.

A subscriber on the real event bus reads the item's row from SQLite as each event is
published, on the publishing thread, while a real engine finishes, fails, cancels and deletes
downloads from the local origin.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance import events
from appliance.runtime import Runtime
from appliance.store.records import (
    CANCELLED,
    DONE,
    DOWNLOADING,
    ERROR,
    FINAL_STATUSES,
    FINISHED,
    PENDING,
    POSTPROCESSING,
    PREPARING,
    QUEUE,
)

# How far along a state is: the store may be ahead of an event, never behind it.
ORDER = {PENDING: 0, PREPARING: 1, DOWNLOADING: 2, POSTPROCESSING: 3,
         **dict.fromkeys(FINAL_STATUSES, 4)}
KIND_ORDER = {QUEUE: 0, DONE: 1}


class StoreWitness:
    """Compares each item event with the item's stored row at the moment it is published."""

    def __init__(self, runtime: Runtime) -> None:
        self.store = runtime.store
        self.seen: list[tuple[str, str | None]] = []
        self.behind: list[str] = []
        self._lock = threading.Lock()
        self.unsubscribe = runtime.bus.subscribe(self.check)

    def check(self, event: events.Event) -> None:
        data = event.data
        if event.name == events.ITEM_MOVED:  # YTPTube's {to, item}
            data = {**data["item"], "to": data["to"]}
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return
        row = self.store.get(data["id"])
        problem = self._problem(event.name, data, row)
        with self._lock:
            self.seen.append((event.name, data.get("status")))
            if problem:
                self.behind.append(f"{event.name} {data.get('status')}: {problem}")

    @staticmethod
    def _problem(name: str, data: dict[str, Any], row: Any) -> str | None:
        if name == events.ITEM_DELETED:
            return None if row is None else "the row is still stored"
        if row is None:
            return "no row stored"
        if name == events.ITEM_MOVED:
            kind = {"history": "done", "queue": "queue"}[data["to"]]
            return None if row.kind == kind else f"stored in {row.kind}"
        status = data.get("status")
        if status is not None:
            if ORDER[row.status] < ORDER[status]:
                return f"stored as {row.status}"
            if status in FINAL_STATUSES and row.status != status:
                return f"stored as {row.status}"
        kind = data.get("kind")
        if kind is not None and KIND_ORDER[row.kind] < KIND_ORDER[kind]:
            return f"stored in {row.kind}"
        return None


def post(client: TestClient, path: str, body: Any) -> Any:
    response = client.simulate_post(path, body=json.dumps(body),
                                     headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json


def status(client: TestClient, item_id: str) -> str:
    return client.simulate_get(f"/api/history/{item_id}").json["status"]


def test_every_announced_state_is_already_stored(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin) -> None:
    runtime, client = app_with()
    witness = StoreWitness(runtime)
    try:
        finished, failed, slow, waiting = post(client, "/api/history", [
            {"url": origin.clip_url}, {"url": origin.fail_url},
            {"url": origin.slow_url}, {"url": origin.clip2_url, "auto_start": False}])
        wait_for(lambda: status(client, slow["id"]) == DOWNLOADING, timeout=60,
                 message="the slow download to run")
        assert post(client, "/api/history/cancel", {"ids": [slow["id"]]}) == {slow["id"]: "ok"}
        post(client, "/api/history/pause", {"ids": [waiting["id"]]})
        for item, final in ((finished, FINISHED), (failed, ERROR), (slow, CANCELLED)):
            wait_for(lambda i=item, f=final: status(client, i["id"]) == f, timeout=90,
                     message=f"{item['url']} to end {final}")
        assert client.simulate_delete("/api/history", body=json.dumps(
            {"type": "queue", "ids": [waiting["id"]]}),
            headers={"Content-Type": "application/json"}).status_code == 200
        # gone from the queue too, not only from the store
        assert client.simulate_get(f"/api/history/{waiting['id']}").status_code == 404
        assert waiting["id"] not in {i["id"] for i in client.simulate_get(
            "/api/history").json["queue"]}
        # the witness sees every kind of state change, and none ahead of the store. Each is
        # announced after it is stored: a reader of the store may see a state a moment before
        # its event (met on a busy box: the cancel's item_updated), so they are waited for.
        expected = [(events.ITEM_ADDED, PENDING), (events.ITEM_UPDATED, PREPARING),
                    (events.ITEM_UPDATED, DOWNLOADING), (events.ITEM_UPDATED, FINISHED),
                    (events.ITEM_COMPLETED, FINISHED), (events.ITEM_UPDATED, ERROR),
                    (events.ITEM_ERROR, ERROR), (events.ITEM_UPDATED, CANCELLED),
                    (events.ITEM_CANCELLED, CANCELLED), (events.ITEM_MOVED, FINISHED),
                    (events.ITEM_UPDATED, PENDING), (events.ITEM_DELETED, None)]
        wait_for(lambda: all(e in witness.seen for e in expected), timeout=30,
                 message="every kind of state change announced")
    finally:
        witness.unsubscribe()
    assert witness.behind == []
