"""The queue's kept counts (engine/queue_tally.py, filed by engine/queue_order.py) are those a
full scan of the queue counts, after any run of arrivals, departures, returns, runs taking
items and handing them back, and changes of a waiting item's status, auto_start, batch and
figures."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from support.queue_counts import assert_same_batches

from appliance.engine.queue_order import QueueItems
from appliance.engine.queue_tally import QueueBatch, count_key
from appliance.store import Item
from appliance.store.records import DOWNLOADING, PENDING, PREPARING

IDS = st.integers(0, 5).map(lambda n: f"id{n:02d}")
FIGURES = st.one_of(st.none(), st.integers(0, 5).map(lambda n: n * 1000))
SHARES = st.one_of(st.none(), st.sampled_from([0.0, 12.34, 50.0, 99.99, 100.0]))
FIELDS = {
    "status": st.sampled_from([PENDING, PENDING, PREPARING, DOWNLOADING]),
    "auto_start": st.booleans(),
    "batch_id": st.sampled_from(["", "", "b1", "b2"]),
    "batch_name": st.sampled_from(["", "One", "Two"]),
    "total_bytes": FIGURES, "downloaded_bytes": FIGURES,
    "percent": SHARES, "speed": SHARES,
    "created_at": st.integers(0, 6).map(float),
}
ITEMS = st.builds(lambda n, **f: Item(id=n, url="u", **f), IDS, **FIELDS)
CHANGES = st.one_of(*(st.tuples(st.just(name), values) for name, values in FIELDS.items()
                      if name != "created_at"))  # (a queued item's time never changes)
STEPS = st.lists(st.one_of(
    st.tuples(st.sampled_from(["set", "setdefault"]), ITEMS),
    st.tuples(st.sampled_from(["del", "hold", "release"]), IDS),
    st.tuples(st.just("change"), IDS, CHANGES),
    st.tuples(st.just("run changes"), IDS, CHANGES),
), min_size=10, max_size=80)


def _apply(queue: QueueItems, running: set[str], step: tuple[Any, ...]) -> None:
    op, target = step[0], step[1]
    if op in ("set", "setdefault"):
        item = target
        if item.id in queue:  # a queued item keeps its time
            item.created_at = queue[item.id].created_at
        if op == "set":
            queue[item.id] = item
        else:
            queue.setdefault(item.id, item)
    elif target not in queue:
        return
    elif op == "del":
        del queue[target]
    elif op == "hold" and target not in running:  # a run takes the item
        running.add(target)
        queue.hold(target)
    elif op == "release" and target in running:  # its run ends, the item handed back
        running.discard(target)
        queue.release(target)
    elif op == "change" and target not in running:  # a request changes a waiting item
        setattr(queue[target], *step[2])
        queue.refresh(queue[target])
    elif op == "run changes" and target in running:  # its run changes it, unseen
        setattr(queue[target], *step[2])


@settings(max_examples=400)
@given(STEPS)
def test_the_kept_counts_are_a_full_scan_s(steps: list[tuple[Any, ...]]) -> None:
    running: set[str] = set()
    queue = QueueItems(running=running.__contains__)
    for step in steps:
        _apply(queue, running, step)
        resting = [i for i in queue.values() if not queue.held(i)]
        assert {i.id for i in queue.values() if queue.held(i)} == running & {
            i.id for i in queue.values()}
        assert queue.tally.counts == Counter(count_key(i) for i in resting)
        assert_same_batches(queue.tally.batches(), resting)
    for item in list(queue.values()):
        del queue[item.id]
    assert not queue.tally.counts and not queue.tally.batches()


def test_a_batch_s_name_is_its_first_item_s_and_its_time_the_earliest() -> None:
    queue = QueueItems()
    queue["a"] = Item(id="a", url="u", batch_id="b", batch_name="", created_at=3.0)
    queue["b"] = Item(id="b", url="u", batch_id="b", batch_name="One", created_at=2.0,
                      percent=12.5, total_bytes=10)
    queue["c"] = Item(id="c", url="u", batch_id="b", batch_name="Two", created_at=4.0,
                      percent=12.5, total_bytes=5, auto_start=False)
    assert queue.tally.batches() == {"b": QueueBatch(
        counts={(PENDING, True): 2, (PENDING, False): 1}, name="One", total_bytes=15,
        downloaded_bytes=0, percent=25.0, speed=0.0, created_at=2.0)}
    del queue["b"]
    [batch] = queue.tally.batches().values()
    assert (batch.name, batch.created_at, batch.percent, batch.total_bytes) == (
        "Two", 3.0, 12.5, 5)
