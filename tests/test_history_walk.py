"""A walk through every page of the history while items are added and deleted. By ``page``
alone (the contract's offset), an item added before the walk's place repeated one on the next
page and one deleted behind it skipped one; with ``after`` (an item's ``created_at``, which
the ``next`` link carries then) every item there all along is seen exactly once."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from appliance.runtime import Runtime
from appliance.store import Item
from appliance.store.records import new_id


def done_items(rt: Runtime, count: int, label: str) -> list[Item]:
    items = []
    for n in range(count):
        stamp = rt.store.stamp()
        items.append(Item(id=new_id(), url=f"https://media.example/{label}{n}", kind="done",
                          status="finished" if n % 3 else "error", title=f"{label} {n}",
                          created_at=stamp, updated_at=stamp))
    rt.store.insert(items)
    return items


def next_link(answer: Any) -> str | None:
    found = re.search(r'<([^>]*)>; rel="next"', answer.headers.get("link", ""))
    if found is None:
        return None
    return found[1].split("://", 1)[-1].split("/", 1)[-1]  # the path and query


def churn(rt: Runtime, pool: list[Item], stop: threading.Event, done: list[int]) -> None:
    """Add an item and delete one of ``pool`` (never an item there all along) until
    ``stop``."""
    try:
        while not stop.is_set():
            [added] = done_items(rt, 1, "churn")
            pool.append(added)
            doomed = pool.pop(0)
            rt.engine.delete_items([doomed.id], remove_file=False, kind="done")
            done[0] += 1
    finally:
        rt.store.release_thread()


@pytest.mark.parametrize("order", ["DESC", "ASC"])
def test_a_walk_by_its_next_links_sees_every_item_once_while_others_come_and_go(
        app_with: Callable[..., tuple[Runtime, Any]], order: str) -> None:
    rt, client = app_with()
    pool = done_items(rt, 20, "early")
    kept = done_items(rt, 150, "kept")
    pool += done_items(rt, 20, "late")
    stop, churned = threading.Event(), [0]
    thread = threading.Thread(target=churn, args=(rt, pool, stop, churned))
    thread.start()
    seen: Counter[str] = Counter()
    removed: set[str] = set()
    try:
        url: str | None = f"/api/history?type=done&per_page=7&order={order}"
        first = True
        while url is not None:
            path, _, query = url.partition("?")
            answer = client.simulate_get("/" + path.lstrip("/"), query_string=query)
            assert answer.status_code == 200, answer.text
            page = answer.json
            assert page["pagination"]["total"] >= len(kept)
            seen.update(i["id"] for i in page["items"])
            if first:  # the walk anchors itself from the second page on
                url = (f"/api/history?type=done&per_page=7&order={order}"
                       f"&after={page['items'][-1]['created_at']!r}")
                first = False
            else:
                assert page["pagination"]["has_next"] == (next_link(answer) is not None)
                url = next_link(answer)
            # One already seen goes, and one comes at the newest end: by offset, each page
            # after that would have been off by one (or two) at least.
            gone = next((i for i in kept if i.id in seen and i.id not in removed), None)
            if gone is not None:
                rt.engine.delete_items([gone.id], remove_file=False, kind="done")
                removed.add(gone.id)
            done_items(rt, 1, "between")
    finally:
        stop.set()
        thread.join(30)
    assert churned[0] > 0
    there_all_along = [i.id for i in kept]
    assert [i for i in there_all_along if seen[i] != 1] == []
    assert [i for i, n in seen.items() if n > 1] == []


def test_after_is_a_number_and_only_for_one_list(
        app_with: Callable[..., tuple[Runtime, Any]]) -> None:
    rt, client = app_with()
    items = done_items(rt, 5, "item")
    for value in ("x", "nan", "inf", "-inf", ""):
        answer = client.simulate_get("/api/history", params={"type": "done", "after": value})
        if value == "":
            assert answer.status_code == 200, answer.text  # a blank parameter is none
            continue
        assert answer.status_code == 400, (value, answer.text)
        assert answer.json["error"] == (
            "after must be a number: an item's created_at (as the next link carries it), or "
            "that number, a comma and the item's id.")
    answer = client.simulate_get("/api/history", params={"after": "1"})
    assert (answer.status_code, answer.json["error"]) == (
        400, "after needs type=queue or type=done.")
    # Newest first: the items older than the anchor, the total the whole list's.
    answer = client.simulate_get("/api/history", params={
        "type": "done", "after": repr(items[3].created_at), "per_page": "2"})
    assert [i["id"] for i in answer.json["items"]] == [items[2].id, items[1].id]
    assert answer.json["pagination"]["total"] == 5
    assert answer.json["pagination"]["has_next"] is True
    assert answer.json["pagination"]["has_prev"] is False
    assert f"after={items[1].created_at!r}%2C{items[1].id}&" in answer.headers["link"]
    assert answer.headers["count"] == "2"
    # The last page is the whole list's (no anchor); a blank parameter is kept as it came.
    answer = client.simulate_get("/api/history", query_string=(
        f"type=done&status=&after={items[3].created_at!r}&per_page=2"))
    links = {rel: url for url, rel in re.findall(r'<([^>]*)>; rel="(\w+)"',
                                                 answer.headers["link"])}
    assert links["last"].endswith("/api/history?type=done&status=&per_page=2&page=3")
    assert links["next"].endswith(f"/api/history?type=done&status=&after="
                                  f"{items[1].created_at!r}%2C{items[1].id}&per_page=2&page=1")
    last = client.simulate_get("/api/history", params={
        "type": "done", "after": repr(items[1].created_at), "per_page": "2"})
    assert [i["id"] for i in last.json["items"]] == [items[0].id]
    assert last.json["pagination"]["has_next"] is False
    assert 'rel="next"' not in last.headers["link"]
    # Oldest first, and page 2 after the anchor; its prev link keeps the anchor.
    answer = client.simulate_get("/api/history", params={
        "type": "done", "order": "asc", "after": repr(items[0].created_at), "per_page": "2",
        "page": "2"})
    assert [i["id"] for i in answer.json["items"]] == [items[3].id, items[4].id]
    assert answer.json["pagination"]["has_next"] is False
    prev = re.search(r'<([^>]*)>; rel="prev"', answer.headers["link"])
    assert prev is not None and f"after={items[0].created_at!r}&" in prev[1]
    assert prev[1].endswith("&page=1")
    # The queue's list takes it too.
    queued = rt.engine.add([{"url": f"https://media.example/q{n}", "auto_start": False}
                            for n in range(3)])
    answer = client.simulate_get("/api/history", params={
        "type": "queue", "after": repr(queued[2].created_at), "per_page": "1"})
    assert [i["id"] for i in answer.json["items"]] == [queued[1].id]
    assert answer.json["pagination"]["has_next"] is True
    assert answer.json["pagination"]["total"] == 3


def test_a_links_page_stays_where_the_request_had_it_and_only_once(
        app_with: Callable[..., tuple[Runtime, Any]]) -> None:
    rt, client = app_with()
    done_items(rt, 5, "item")
    answer = client.simulate_get("/api/history", query_string="page=2&type=done&per_page=1")
    links = {rel: url for url, rel in re.findall(r'<([^>]*)>; rel="(\w+)"',
                                                 answer.headers["link"])}
    assert links["next"].endswith("/api/history?page=3&type=done&per_page=1")
    assert links["prev"].endswith("/api/history?page=1&type=done&per_page=1")
    # Given twice (the last is the one read): once, where the first was.
    answer = client.simulate_get("/api/history",
                                 query_string="type=done&page=9&per_page=1&page=4")
    assert answer.json["pagination"]["page"] == 4
    links = {rel: url for url, rel in re.findall(r'<([^>]*)>; rel="(\w+)"',
                                                 answer.headers["link"])}
    assert links["next"].endswith("/api/history?type=done&page=5&per_page=1")


def test_items_created_at_the_same_time_are_each_walked_once(
        app_with: Callable[..., tuple[Runtime, Any]]) -> None:
    """Creation times are unique within one run of the service only: after a restart with
    the clock set back (a Pi with no real-time clock starts at the time it last saved), or an
    item written by another program, two items can share one. An anchor of the time alone
    skipped every other item of that time at a page's end; the order is the time, then the
    id, and the ``next`` link carries both."""
    rt, client = app_with()
    stamp = rt.store.stamp()
    tied = [Item(id=new_id(), url=f"https://media.example/tied{n}", kind="done",
                 status="finished", title=f"tied {n}", created_at=stamp, updated_at=stamp)
            for n in range(5)]
    rt.store.insert(tied)
    before = done_items(rt, 1, "older")  # (stamped after, then set before)
    before[0].created_at = stamp - 1
    rt.store.save(before[0])
    done_items(rt, 2, "newer")
    everything = {i["id"] for i in client.simulate_get(
        "/api/history", params={"type": "done", "per_page": "100"}).json["items"]}
    assert len(everything) == 8
    for order in ("DESC", "ASC"):
        seen: list[str] = []
        url: str | None = f"/api/history?type=done&per_page=2&order={order}"
        while url is not None:
            path, _, query = url.partition("?")
            answer = client.simulate_get("/" + path.lstrip("/"), query_string=query)
            assert answer.status_code == 200, answer.text
            seen += [i["id"] for i in answer.json["items"]]
            url = next_link(answer)
            if url is None and len(seen) < 8 and answer.json["pagination"]["has_next"]:
                raise AssertionError("has_next without a next link")
            if "after=" not in (url or "after="):  # the walk anchors itself from page 2 on
                last = answer.json["items"][-1]
                url = (f"/api/history?type=done&per_page=2&order={order}"
                       f"&after={last['created_at']!r}%2C{last['id']}")
        assert sorted(seen) == sorted(everything), order
        # The same order as one page of the whole list: the time, then the id.
        whole = client.simulate_get("/api/history", params={
            "type": "done", "per_page": "100", "order": order}).json["items"]
        assert seen == [i["id"] for i in whole]
        keys = [(i["created_at"], i["id"]) for i in whole]
        assert keys == sorted(keys, reverse=order == "DESC")
    # The queue's list (in the engine's memory, read from the store at a start) is walked
    # in the same order: its items tied in the store, then the service restarted.
    queued = rt.engine.add([{"url": f"https://media.example/q{n}", "auto_start": False}
                            for n in range(4)])
    for item in queued:
        item.created_at = stamp
        rt.store.save(item)
    rt.stop()
    rt, client = app_with()
    assert {i.created_at for i in rt.engine.queue_items()} == {stamp}
    ids = sorted(i.id for i in queued)
    answer = client.simulate_get("/api/history", params={
        "type": "queue", "per_page": "1", "after": f"{stamp!r},{ids[2]}"})
    assert [i["id"] for i in answer.json["items"]] == [ids[1]]
    assert f"after={stamp!r}%2C{ids[1]}&" in answer.headers["link"]
    answer = client.simulate_get("/api/history", params={
        "type": "queue", "per_page": "5", "order": "asc", "after": f"{stamp!r},{ids[1]}"})
    assert [i["id"] for i in answer.json["items"]] == ids[2:]
