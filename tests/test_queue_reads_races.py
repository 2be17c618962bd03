"""Reads of the queue while it changes in every way at once: items added (playlists expand
into their entries, failures leave for the history), deleted, paused and started, downloads
starting and handed back by the engine's own threads. No read fails or sees an item twice,
each list is in its order, and once the queue is still, each answers what a sort of the
whole queue's copy answers."""

from __future__ import annotations

import contextlib
import random
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.errors import AppError
from appliance.runtime import Runtime
from appliance.store.order import sort_key
from appliance.store.records import most_relevant

HELD = 1_000  # bytes a second: a download that runs until it is paused or deleted
CHANGERS = 2
CHANGES = 60  # at least, per changer, while the reads go on
READS = 600


@pytest.fixture
def switching() -> Iterator[None]:
    """Threads switched every microsecond instead of every 5 ms: a read that is not whole
    under the engine's lock meets a change halfway far more often than by chance."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def change(rt: Runtime, origin: MediaOrigin, seed: int, stop: threading.Event,
           done: list[int], failures: list[BaseException]) -> None:
    rng = random.Random(seed)
    try:
        while not stop.is_set():
            op = rng.choice(("add", "add", "playlist", "fail", "delete", "pause", "start"))
            if op == "add":
                rt.engine.add([{"url": f"{origin.slow_url_at(HELD)}&n={rng.random()}",
                                "auto_start": rng.random() < 0.4}])
            elif op == "playlist":
                rt.engine.add([{"url": origin.playlist_url, "auto_start": False}])
            elif op == "fail":
                rt.engine.add([{"url": f"{origin.fail_url}?n={rng.random()}"}])
            else:
                ids = rt.engine.queue_ids(lambda _item: True)
                if ids:
                    action = getattr(rt.engine, f"{op}_items")
                    with contextlib.suppress(AppError):  # every one gone already
                        action(rng.sample(ids, min(1 if op == "delete" else 3, len(ids))))
            done[seed] += 1
    except BaseException as exc:
        failures.append(exc)
    finally:
        rt.store.release_thread()


def _in_order(items: list[dict[str, Any]], newest_first: bool) -> bool:
    keys = [(i["created_at"], i["id"]) for i in items]
    return keys == sorted(set(keys), reverse=newest_first)


def read(client: Any, n: int) -> None:
    """One read of a list of the queue, checked as far as a changing queue allows."""
    kind = n % 4
    if kind < 2:
        order = "DESC" if kind == 0 else "ASC"
        params = {"type": "queue", "per_page": "10", "order": order}
        if n % 8 >= 4:
            params["status"] = "pending"
        answer = client.simulate_get("/api/history", params=params)
        assert answer.status_code == 200, answer.text
        items = answer.json["items"]
        assert _in_order(items, order == "DESC") and len(items) <= 10
        assert answer.json["pagination"]["total"] >= len(items)
    elif kind == 2:
        answer = client.simulate_get("/api/history/live", params={"queue_limit": "10"})
        assert answer.status_code == 200, answer.text
        queue = answer.json["queue"]
        assert len(queue) <= 10 and answer.json["queue_count"] >= len(queue)
        assert all(key == item["id"] for key, item in queue.items())
    else:
        answer = client.simulate_get("/api/downloads", params={"limit": "10",
                                                               "status": "paused"})
        assert answer.status_code == 200, answer.text
        tasks = answer.json["tasks"]
        assert len({t["id"] for t in tasks}) == len(tasks) <= 10
        assert all(t["state"] == "paused" for t in tasks)


def test_reads_while_the_queue_changes_in_every_way(
        app_with: Callable[..., tuple[Runtime, Any]], origin: MediaOrigin,
        switching: None) -> None:
    rt, client = app_with(YTP_MAX_WORKERS="2")
    stop, done, failures = threading.Event(), [0] * CHANGERS, []
    threads = [threading.Thread(target=change, args=(rt, origin, n, stop, done, failures))
               for n in range(CHANGERS)]
    for thread in threads:
        thread.start()
    try:
        n = 0
        while n < READS or min(done) < CHANGES:
            assert not failures, failures
            read(client, n)
            n += 1
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not failures, failures
    rt.engine.set_paused(True)

    def still() -> bool:  # every item's info in and none left to leave for the history
        before = [(i.id, i.status) for i in rt.engine.queue_items()]
        return all(i.extractor for i in rt.engine.queue_items()) and before == [
            (i.id, i.status) for i in rt.engine.queue_items()]

    wait_for(still, timeout=60, message="a still queue")
    queue = rt.engine.queue_items()
    assert len(queue) > 10  # more than the cut below takes
    window = rt.engine.queue_window(0, 10_000, newest_first=True)
    assert [i.id for i in window.items] == [
        i.id for i in sorted(queue, key=sort_key, reverse=True)]
    cut, count = rt.engine.queue_cut(10)
    assert count == len(queue)
    assert [i.id for i in cut] == [i.id for i in most_relevant(queue, 10)]
