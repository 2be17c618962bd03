"""A delete of history items (``kind: done``: every failed item, by status) makes each record
once. The engine read the records first for their kind, then the store's delete made them
again: 20,000 failed items of a history of 100,000 took 5.4 s to delete (bench/paths_scale.py),
4.2-4.9 s of it the store's CPU, 3.1-3.2 s once read once."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from falcon.testing import TestClient

from appliance.runtime import Runtime
from appliance.store import Item
from appliance.store.records import DONE, new_id

COUNT = 600  # more than one statement's 500 ids


def test_a_delete_of_history_items_makes_each_record_once_and_only_of_its_kind(
        app_with: Callable[..., tuple[Runtime, TestClient]]) -> None:
    rt, client = app_with()
    store = rt.engine.store
    failed = [Item(id=new_id(), url=f"https://media.example/{n}", kind=DONE, status="error",
                   created_at=store.stamp(), info={"id": str(n)}) for n in range(COUNT)]
    store.insert(failed)
    [waiting] = rt.engine.add([{"url": "https://media.example/waiting", "auto_start": False}])
    made = [0]

    def profile(frame: Any, event: str, _arg: object) -> None:
        if event == "call" and frame.f_code.co_name == "_record_of_columns":
            made[0] += 1

    sys.setprofile(profile)
    try:
        deleted = rt.engine.delete_items([waiting.id, *(i.id for i in failed)], kind=DONE)
    finally:
        sys.setprofile(None)
    assert made[0] == COUNT  # twice as many on the old code
    assert deleted == {waiting.id: "not found", **dict.fromkeys((i.id for i in failed),
                                                                 "deleted")}
    assert store.count(DONE) == 0
    assert rt.engine.get(waiting.id) is not None  # a queue item is no history item
    assert client.simulate_get(f"/api/history/{waiting.id}").status_code == 200
