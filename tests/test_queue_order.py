"""The queue's kept orders (engine/queue_order.py) answer what sorting, filtering and cutting
a copy of the whole queue answered, after any run of arrivals, departures and returns: items
of one time (a clock set back), anchors with and without an id, filters, pages past the end."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.engine.queue_order import QueueItems
from appliance.store import Item
from appliance.store.order import Anchor, sort_key
from appliance.store.records import DOWNLOADING, PENDING, PREPARING, most_relevant

STATUSES = st.sampled_from([PENDING, PENDING, PENDING, DOWNLOADING, PREPARING])
# ids and times from small sets: ties of created_at, and an id that leaves and comes back
ITEMS = st.builds(lambda n, t, s: Item(id=f"id{n:02d}", url="u", created_at=float(t), status=s),
                  st.integers(0, 30), st.integers(0, 8), STATUSES)
STEPS = st.lists(st.tuples(st.sampled_from(["set", "del", "setdefault"]), ITEMS), max_size=60)


def _replayed(steps: list[tuple[str, Item]]) -> tuple[QueueItems, dict[str, Item]]:
    """The steps on a QueueItems and on a plain dict (the engine's queue before)."""
    kept, plain = QueueItems(), {}
    for op, item in steps:
        if op == "del":
            if item.id in plain:
                del plain[item.id]
                del kept[item.id]
        elif op == "set" and item.id in plain:  # a queued item keeps its time
            item.created_at = plain[item.id].created_at
            plain[item.id] = kept[item.id] = item
        elif op != "setdefault" or item.id not in plain:
            plain[item.id] = kept[item.id] = item
        else:
            assert kept.setdefault(item.id, item) is plain.setdefault(item.id, item)
    return kept, plain


def _sorted_cut(items: list[Item], start: int, count: int, newest_first: bool,
                keep: Any, after: Anchor | None) -> tuple[list[Item], int, bool]:
    """What the queue's page was: sort a copy, filter it, count, anchor, cut."""
    listed = [i for i in sorted(items, key=sort_key, reverse=newest_first)
              if keep is None or keep(i)]
    total = len(listed)
    if after is not None:
        listed = [i for i in listed if after.follows(i.created_at, i.id, newest_first)]
    return listed[start : start + count], total, len(listed) > start + count


@settings(max_examples=600)  # ~1 ms each; 100 met a page past the end too seldom
@given(STEPS, st.integers(0, 12), st.integers(0, 6), st.booleans(),
       st.sampled_from([None, "pending", "!pending", "odd"]),
       st.one_of(st.none(), st.integers(-1, 9), st.tuples(st.integers(-1, 9),
                                                           st.integers(0, 31))))
def test_a_window_is_the_cut_of_the_sorted_copy(
        steps: list[tuple[str, Item]], start: int, count: int, newest_first: bool,
        test: str | None, at: Any) -> None:
    kept, plain = _replayed(steps)
    keep = {None: None, "pending": lambda i: i.status == PENDING,
            "!pending": lambda i: i.status != PENDING,
            "odd": lambda i: int(i.id[2:]) % 2 == 1}[test]
    after = None if at is None else (
        Anchor(float(at)) if isinstance(at, int) else Anchor(float(at[0]), f"id{at[1]:02d}"))
    window = kept.window(start, count, newest_first=newest_first, keep=keep, after=after)
    assert (window.items, window.total, window.more) == _sorted_cut(
        list(plain.values()), start, count, newest_first, keep, after)
    assert len(kept) == len(plain) and list(kept.values()) == list(plain.values())


@given(STEPS, st.integers(0, 12))
def test_the_running_and_the_newest_arrivals_cut_as_the_whole_queue(
        steps: list[tuple[str, Item]], limit: int) -> None:
    kept, plain = _replayed(steps)
    running = [i for i in plain.values() if i.status != PENDING]
    candidates = kept.in_arrival_order([*running, *kept.newest_arrivals(limit)])
    assert most_relevant(candidates, limit) == most_relevant(list(plain.values()), limit)


def test_an_item_filed_under_its_time_leaves_from_it() -> None:
    """Its key is the one it was filed under: an item whose time changed after (the engine
    never does; a bug that did) still leaves the list order whole."""
    queue = QueueItems()
    early, late = Item(id="a", url="u", created_at=1.0), Item(id="b", url="u", created_at=2.0)
    queue["a"], queue["b"] = early, late
    early.created_at = 5.0
    del queue["a"]
    assert queue.window(0, 5, newest_first=False).items == [late]
