"""Every read of the queue on one mixed queue: two running downloads in the middle of it,
waiting and paused items of several presets and batches, failed ones in the history. The
order, totals, pages, anchors and cuts of each list that reads the queue are pinned here by
name, so that a faster way to read the queue shows any change in what it answers."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import runtime_of_module
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance import flasharr
from appliance.api import history
from appliance.api.app import create_app
from appliance.runtime import Runtime
from appliance.store import Item
from appliance.store.records import new_id

SLOW = 2000  # bytes a second: a running download that outlasts the module's tests


@dataclasses.dataclass
class Mixed:
    rt: Runtime
    client: TestClient
    ids: dict[str, str]  # name -> id
    order: list[str]  # names, in the order they were added (= oldest first)
    done: list[str]  # ids of the history, newest first

    def names(self, answer_ids: list[str]) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id.get(i, i) for i in answer_ids]


def _add(client: TestClient, url: str, **fields: Any) -> str:
    answer = client.simulate_post("/api/history", body=json.dumps({"url": url, **fields}),
                                  headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    return answer.json[0]["id"]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory, origin: MediaOrigin) -> Iterator[Mixed]:
    for rt in runtime_of_module(tmp_path_factory, "queue-reads", YTP_MAX_WORKERS="2"):
        yield _filled(rt, origin)


def _filled(rt: Runtime, origin: MediaOrigin) -> Mixed:
    client = TestClient(create_app(rt))
    slow = origin.slow_url_at(SLOW)
    ids: dict[str, str] = {}
    plan = [  # name, fields; r* run, w* wait for a slot, p* are paused
        ("p0", {"auto_start": False}),
        ("r0", {}),
        ("p1", {"auto_start": False, "preset": "video-720p-mp4", "batch_id": "B1",
                "batch_name": "One"}),
        ("r1", {"preset": "video-1080p"}),
        ("w0", {"preset": "video-1080p"}),
        ("p2", {"auto_start": False, "batch_id": "B1", "batch_name": "One"}),
        ("w1", {}),
        ("w2", {"preset": "video-720p-mp4", "batch_id": "B2", "batch_name": "Two"}),
        ("p3", {"auto_start": False}),
    ]
    for name, fields in plan:
        needle = "&item=needle" if name in {"p2", "w1"} else ""
        ids[name] = _add(client, f"{slow}&item={name}{needle}", **fields)
        if name.startswith("r"):  # running before anything else may take its slot
            wait_for(lambda n=name: rt.engine.get(ids[n]).status == "downloading",
                     message=f"{name} downloading")
    wait_for(lambda: all(rt.engine.get(i).extractor for i in ids.values()),
             message="every item's info")
    failed = _add(client, origin.fail_url)
    wait_for(lambda: rt.engine.get(failed).kind == "done", message="the failure")
    stamps = [rt.store.stamp() for _ in range(3)]
    rt.store.insert([Item(id=new_id(), url=f"https://media.example/{n}", kind="done",
                          status=status, created_at=stamp, updated_at=stamp)
                     for n, (status, stamp) in enumerate(
                         zip(("finished", "error", "cancelled"), stamps, strict=True))])
    done = [i.id for i in rt.store.history(10)]
    assert len(done) == 4 and done[-1] == failed
    return Mixed(rt, client, ids, [name for name, _ in plan], done)


def _page(m: Mixed, **params: str) -> tuple[list[str], dict[str, Any], Any]:
    answer = m.client.simulate_get("/api/history", params={"type": "queue", **params})
    assert answer.status_code == 200, answer.text
    return m.names([i["id"] for i in answer.json["items"]]), answer.json["pagination"], answer


def test_pages_of_the_queue_newest_and_oldest_first(mixed: Mixed) -> None:
    pages = [_page(mixed, per_page="3", page=str(n)) for n in (1, 2, 3, 4)]
    assert [names for names, _, _ in pages] == [
        ["p3", "w2", "w1"], ["p2", "w0", "r1"], ["p1", "r0", "p0"], []]
    first = pages[0][1]
    assert first == {"page": 1, "per_page": 3, "total": 9, "total_pages": 3,
                     "has_next": True, "has_prev": False}
    assert pages[0][2].headers["total-count"] == "9" and pages[0][2].headers["count"] == "3"
    assert pages[3][1]["has_next"] is False and pages[3][2].headers["count"] == "0"
    ascending = [_page(mixed, per_page="4", page=str(n), order="asc")[0] for n in (1, 2, 3)]
    assert ascending == [["p0", "r0", "p1", "r1"], ["w0", "p2", "w1", "w2"], ["p3"]]
    whole, paging, _ = _page(mixed, per_page="1000")
    assert whole == mixed.order[::-1] and paging["total"] == 9
    for params in ({}, {"order": "ASC"}, {"status": "pending"}, {"search": "needle"}):
        far, paging, _ = _page(mixed, per_page="1000", page="10000000", **params)
        assert far == [] and paging["has_next"] is False and paging["total"] > 0, params


def test_pages_of_the_queue_by_status_and_search(mixed: Mixed) -> None:
    pending, paging, _ = _page(mixed, status="pending", order="ASC", per_page="3", page="2")
    assert pending == ["p2", "w1", "w2"] and paging["total"] == 7
    assert paging["total_pages"] == 3 and paging["has_next"] is True
    assert _page(mixed, status="!pending")[0] == ["r1", "r0"]
    assert _page(mixed, status="downloading", order="ASC")[0] == ["r0", "r1"]
    assert _page(mixed, status="!downloading", per_page="2")[:2] == (
        ["p3", "w2"], {"page": 1, "per_page": 2, "total": 7, "total_pages": 4,
                       "has_next": True, "has_prev": False})
    none, paging, _ = _page(mixed, status="finished")
    assert none == [] and paging["total"] == 0 and paging["total_pages"] == 1
    assert _page(mixed, search="NEEDLE")[0] == ["w1", "p2"]
    found, paging, _ = _page(mixed, search="needle", status="pending", per_page="1",
                             order="ASC")
    assert found == ["p2"] and paging["total"] == 2
    assert _page(mixed, search="nowhere")[1]["total"] == 0


def test_walks_of_the_queue_after_an_anchor(mixed: Mixed) -> None:
    def at(name: str) -> str:
        item = mixed.rt.engine.get(mixed.ids[name])
        return f"{item.created_at!r},{item.id}"

    walked, paging, answer = _page(mixed, after=at("r1"), order="ASC", per_page="3")
    assert walked == ["w0", "p2", "w1"] and paging["has_next"] is True
    assert paging["total"] == 9  # the list's, not what follows the anchor
    assert f"after={at('w1')}".replace(",", "%2C") in answer.headers["link"]
    assert _page(mixed, after=at("w0"), per_page="3")[0] == ["r1", "p1", "r0"]
    last, paging, _ = _page(mixed, after=at("w2"), order="ASC", per_page="3")
    assert last == ["p3"] and paging["has_next"] is False
    pending, paging, _ = _page(mixed, after=at("r0"), order="ASC", per_page="2",
                               status="pending")
    assert pending == ["p1", "w0"] and paging["total"] == 7 and paging["has_next"] is True
    stamp = repr(mixed.rt.engine.get(mixed.ids["p1"]).created_at)  # the time alone
    assert _page(mixed, after=stamp, per_page="5")[0] == ["r0", "p0"]
    assert _page(mixed, after=stamp, order="ASC", per_page="2")[0] == ["r1", "w0"]
    assert _page(mixed, after="1", per_page="5")[0] == []


def test_waiting_items_on_a_page_are_whole_and_the_page_has_an_etag(mixed: Mixed) -> None:
    _, _, answer = _page(mixed, status="pending", per_page="3")
    for item in answer.json["items"]:
        assert item == {**mixed.rt.engine.get(item["id"]).to_dict(), "sidecar": {}}
    again = mixed.client.simulate_get("/api/history", headers={
        "If-None-Match": answer.headers["etag"]},
        params={"type": "queue", "status": "pending", "per_page": "3"})
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["/api/history/live", "/api/system/configuration"])
def test_the_running_then_the_newest_waiting_up_to_queue_limit(mixed: Mixed, path: str
                                                                ) -> None:
    def cut(**params: str) -> tuple[list[str], int]:
        answer = mixed.client.simulate_get(path, params=params).json
        queue = answer["queue"]
        listed = list(queue) if isinstance(queue, dict) else [i["id"] for i in queue]
        return mixed.names(listed), answer["queue_count"]

    assert cut() == (mixed.order, 9)
    for limit, names in ((0, []), (1, ["r0"]), (2, ["r0", "r1"]), (3, ["r0", "r1", "p3"]),
                         (5, ["r0", "r1", "w1", "w2", "p3"]), (9, mixed.order),
                         (50, mixed.order), (999_999_999, mixed.order)):
        assert cut(queue_limit=str(limit)) == (names, 9), limit
    slim = mixed.client.simulate_get(path, params={"queue_limit": "3",
                                                   "queue_fields": "status,preset"}).json
    items = slim["queue"].values() if isinstance(slim["queue"], dict) else slim["queue"]
    assert [(i["status"], i["preset"]) for i in items] == [
        ("downloading", "default"), ("downloading", "video-1080p"), ("pending", "default")]


def test_the_legacy_shape_and_flasharr_sync_cut_the_queue_alike(
        mixed: Mixed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "LEGACY_HISTORY_LIMIT", 4)
    legacy = mixed.client.simulate_get("/api/history").json
    assert mixed.names([i["id"] for i in legacy["queue"]]) == ["r0", "r1", "w2", "p3"]
    assert [i["id"] for i in legacy["history"]] == mixed.done
    monkeypatch.setattr(flasharr, "SYNC_ALL_LIMIT", 3)
    synced = mixed.rt.service.flasharr_tasks()
    assert mixed.names([t["id"] for t in synced]) == ["r0", "r1", "p3"]
    assert [t["state"] for t in synced] == ["downloading", "downloading", "paused"]


def _downloads(m: Mixed, path: str = "/api/downloads", **params: str) -> dict[str, Any]:
    answer = m.client.simulate_get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json


def test_flasharr_lists_of_the_queue_by_state(mixed: Mixed) -> None:
    first = _downloads(mixed, limit="4")
    assert mixed.names([t["id"] for t in first["tasks"]]) == ["p0", "r0", "p1", "r1"]
    assert (first["total"], first["total_pages"]) == (13, 4)
    third = _downloads(mixed, limit="4", page="3")
    assert [t["id"] for t in third["tasks"]] == [mixed.ids["p3"], *mixed.done[:3]]
    for state, names in (("paused", ["p0", "p1", "p2", "p3"]), ("queued", ["w0", "w1", "w2"]),
                         ("downloading", ["r0", "r1"]), ("PAUSED", ["p0", "p1", "p2", "p3"])):
        listed = _downloads(mixed, status=state)
        assert mixed.names([t["id"] for t in listed["tasks"]]) == names, state
        assert listed["total"] == len(names)
    assert _downloads(mixed, status="paused", limit="3", page="2")["tasks"][0]["id"] == \
        mixed.ids["p3"]
    failed = _downloads(mixed, status="failed")
    assert [t["id"] for t in failed["tasks"]] == [*mixed.done[:2], mixed.done[3]]  # newest first
    counts = first["status_counts"]
    assert counts["downloading"] == 2 and counts["paused"] == 4 and counts["queued"] == 3


def test_flasharr_display_rows_and_a_batchs_items(mixed: Mixed) -> None:
    rows = _downloads(mixed, "/api/downloads/batches", limit="5")
    assert [b["batch_id"] for b in rows["batches"]] == ["B2", "B1"]
    assert mixed.names([t["id"] for t in rows["standalone"]]) == ["p0", "r0", "r1"]
    assert rows["total"] == 2 + 6 + 4
    later = _downloads(mixed, "/api/downloads/batches", limit="5", page="2")
    assert mixed.names([t["id"] for t in later["standalone"]]) == [
        "w0", "w1", "p3", *mixed.done[:2]]
    paused = _downloads(mixed, "/api/downloads/batches", status="paused")
    assert [b["batch_id"] for b in paused["batches"]] == ["B1"]
    assert mixed.names([t["id"] for t in paused["standalone"]]) == ["p0", "p3"]
    items = mixed.client.simulate_get("/api/downloads/batch/B1/items").json
    assert mixed.names([t["id"] for t in items]) == ["p1", "p2"]
    assert [t["state"] for t in items] == ["paused", "paused"]


def test_the_engines_figures_of_the_queue(mixed: Mixed) -> None:
    stats = mixed.rt.engine.stats()
    assert (stats["active_downloads"], stats["queued"], stats["paused"]) == (2, 3, 4)
    links = mixed.client.simulate_get("/api/history", params={
        "type": "queue", "per_page": "4", "page": "2"}).headers["link"]
    assert re.search(r"page=3>; rel=\"next\"", links) and 'page=1>; rel="prev"' in links
