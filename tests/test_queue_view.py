"""How much of the queue ``/api/history/live`` and ``/api/system/configuration`` carry
(``queue_fields``, ``queue_limit``, ``queue_count``), and the clients that ask for less."""

from __future__ import annotations

import json

import pytest
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance import flasharr
from appliance.runtime import Runtime
from appliance.store import Item
from appliance.store.records import most_relevant, new_id

LIVE, CONFIGURATION = "/api/history/live", "/api/system/configuration"


def queue_of(client: TestClient, path: str, **params: str) -> tuple[list[dict], int]:
    answer = client.simulate_get(path, params=params)
    assert answer.status_code == 200, answer.text
    queue = answer.json["queue"]
    return (list(queue.values()) if path == LIVE else queue), answer.json["queue_count"]


def test_a_client_asks_for_fewer_items_and_fewer_fields(
        runtime: Runtime, client: TestClient, origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    client.simulate_post("/api/system/pause")
    added = client.simulate_post(
        "/api/history", body=json.dumps([{"url": u} for u in origin.playlist_entry_urls]),
        headers={"Content-Type": "application/json"}).json
    ids = [item["id"] for item in added]
    wait_for(lambda: all(i["extractor"] for i in client.simulate_get(LIVE).json["queue"].values()),
             message="every item's info")
    for path in (LIVE, CONFIGURATION):
        whole, count = queue_of(client, path)
        assert count == 3 and [i["id"] for i in whole] == ids and "url" in whole[0]
        # the newest waiting ones, in the queue's order
        newest, count = queue_of(client, path, queue_limit="2")
        assert count == 3 and [i["id"] for i in newest] == ids[1:]
        assert queue_of(client, path, queue_limit="0") == ([], 3)
        assert queue_of(client, path, queue_limit="1000")[0] == whole
        slim, _ = queue_of(client, path, queue_fields="status,speed")
        assert slim == [{"id": i, "status": "pending", "speed": None} for i in ids]
        both, _ = queue_of(client, path, queue_fields=" title ,, title", queue_limit="1")
        assert both == [{"id": ids[2], "title": whole[2]["title"]}]
    # Flasharr's SYNC_ALL on connecting: as many as its bound, the same ones (the rest: paged)
    assert [t["id"] for t in runtime.service.flasharr_tasks()] == ids
    monkeypatch.setattr(flasharr, "SYNC_ALL_LIMIT", 2)
    assert [t["id"] for t in runtime.service.flasharr_tasks()] == ids[1:]


def test_what_a_client_asks_for_is_checked(client: TestClient) -> None:
    for path in (LIVE, CONFIGURATION):
        # Never a way around what the item's one serializer leaves out (a secret, a path).
        for fields in ("cookies", "status,download_folder", "__class__", "x" * 500,
                       ",".join(["status"] * 65)):
            refused = client.simulate_get(path, params={"queue_fields": fields})
            assert refused.status_code == 400, fields
            assert refused.json["code"] == "INVALID_REQUEST" and "queue_fields" in \
                refused.json["error"] and len(refused.json["error"]) < 120
        for limit in ("-1", "abc", "1e3", "1.5", "\u0663", "9" * 10, ""):
            refused = client.simulate_get(path, params={"queue_limit": limit})
            assert refused.status_code == 400, limit
            assert refused.json["error"] == "queue_limit must be a whole number (0 or more)."


def test_running_items_come_first_then_the_newest_waiting() -> None:
    def item(status: str) -> Item:
        return Item(id=new_id(), url="http://x.invalid/", status=status)

    running_old, waiting_old, waiting, running, waiting_new = (
        item("downloading"), item("pending"), item("pending"), item("preparing"),
        item("pending"))
    queue = [running_old, waiting_old, waiting, running, waiting_new]
    assert most_relevant(queue, 3) == [running_old, running, waiting_new]
    assert most_relevant(queue, 4) == [running_old, waiting, running, waiting_new]
    assert most_relevant(queue, 1) == [running_old]
    assert most_relevant(queue, 0) == []
    assert most_relevant(queue, 5) == queue


def test_the_legacy_shape_cuts_the_queue_as_it_cuts_the_history(
        runtime: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """``GET /api/history`` (type=all, the default) carried the whole queue: a big channel
    added at once, tens of thousands of items, tens of MiB at each call. At most
    LEGACY_HISTORY_LIMIT, the running first, then the newest waiting, as the live view's."""
    from appliance.api import history

    monkeypatch.setattr(history, "LEGACY_HISTORY_LIMIT", 3)
    added = runtime.engine.add([{"url": f"https://media.example/{n}", "auto_start": False}
                                for n in range(5)])
    ids = [i.id for i in added]
    legacy = client.simulate_get("/api/history").json
    assert [i["id"] for i in legacy["queue"]] == ids[2:]
    assert legacy["queue"][0] == runtime.engine.get(ids[2]).to_dict()  # whole items
    assert [i.id for i in most_relevant(runtime.engine.queue_items(), 3)] == ids[2:]
    asked = client.simulate_get("/api/history", params={"queue_limit": "1",
                                                        "queue_fields": "status"}).json
    assert asked["queue"] == [{"id": ids[4], "status": "pending"}]
    assert client.simulate_get("/api/history", params={"queue_limit": "x"}).status_code == 400
    monkeypatch.setattr(history, "LEGACY_HISTORY_LIMIT", 1000)
    assert [i["id"] for i in client.simulate_get("/api/history").json["queue"]] == ids
