"""Flasharr's REST view of the queue (downloads, batches, settings) through falcon.testing, on
a real engine with real yt-dlp downloading from the local origin."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for
from test_api_history import seed_history

from appliance import flasharr as mapping
from appliance.engine.queue_tally import summed
from appliance.runtime import Runtime
from appliance.store import Item
from appliance.store.records import new_id


def send(client: TestClient, method: str, path: str, body: Any) -> Any:
    return client.simulate_request(method, path, body=json.dumps(body),
                                   headers={"Content-Type": "application/json"})


def add(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = send(client, "POST", "/api/downloads", body)
    assert response.status_code == 201, response.text
    return response.json


def task(client: TestClient, item_id: str) -> dict[str, Any]:
    response = client.simulate_get(f"/api/downloads/{item_id}")
    assert response.status_code == 200, response.text
    return response.json


def wait_state(client: TestClient, item_id: str, states: set[str],
               timeout: float = 90) -> dict[str, Any]:
    return wait_for(lambda: (t := task(client, item_id))["state"] in states and t,
                    timeout=timeout, message=f"download {item_id} to reach {states}")


def batch(client: TestClient, batch_id: str) -> dict[str, Any] | None:
    found = [b for b in client.simulate_get("/api/batches").json["batches"]
             if b["batch_id"] == batch_id]
    return found[0] if found else None


def assert_error(response: Any, status: int, code: str, text: str = "") -> None:
    assert response.status_code == status, response.text
    assert set(response.json) == {"error", "code"}
    assert response.json["code"] == code
    assert text in response.json["error"]


# --- downloads --------------------------------------------------------------------------


def test_add_download_get_and_finish(client: TestClient, runtime: Runtime,
                                     origin: MediaOrigin) -> None:
    response = send(client, "POST", "/api/downloads", {"url": origin.clip_url})
    assert response.status_code == 201
    added = response.json
    assert {"id", "filename", "state", "batch_id", "size"} <= set(added)
    assert added["state"] == "queued" and added["filename"] == origin.clip_url
    assert response.headers["Location"].endswith(f"/api/downloads/{added['id']}")
    done = wait_state(client, added["id"], {"completed", "failed"})
    assert done["state"] == "completed", done
    assert done["filename"] == "clip.mp4" and done["progress"] == 100
    size = (runtime.settings.download_path / "clip.mp4").stat().st_size
    assert done["downloaded_bytes"] == done["total_bytes"] == size > 0
    assert done["created_at"].endswith("Z") and done["started_at"].endswith("Z")
    assert done["created_at"] <= done["started_at"]
    # the same item in YTPTube's shape
    item = client.simulate_get(f"/api/history/{added['id']}").json
    assert item["status"] == "finished" and item["id"] == added["id"]


def test_add_download_bad_input(client: TestClient) -> None:
    assert_error(send(client, "POST", "/api/downloads", {}), 400, "INVALID_REQUEST",
                 "url param is required.")
    assert_error(send(client, "POST", "/api/downloads", {"url": "file:///etc/passwd"}), 400,
                 "INVALID_REQUEST", "http(s)")
    assert_error(send(client, "POST", "/api/downloads", {"url": "http://x.invalid/",
                                                         "batch_id": 5}),
                 400, "INVALID_REQUEST", "batch_id must be a string.")
    assert_error(send(client, "POST", "/api/downloads", [{"url": "http://x.invalid/"}]), 400,
                 "INVALID_REQUEST", "JSON object")
    malformed = client.simulate_post("/api/downloads", body="{nope",
                                     headers={"Content-Type": "application/json"})
    assert_error(malformed, 400, "INVALID_REQUEST", "Invalid JSON")
    form = client.simulate_post("/api/downloads", body="url=x",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(form, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert client.simulate_get("/api/downloads").json["total"] == 0


def test_unknown_ids_are_404(client: TestClient) -> None:
    unknown = new_id()
    assert_error(client.simulate_get(f"/api/downloads/{unknown}"), 404, "NOT_FOUND",
                 "Download not found.")
    assert_error(client.simulate_delete(f"/api/downloads/{unknown}"), 404, "NOT_FOUND")
    for action in ("pause", "resume"):
        assert_error(client.simulate_post(f"/api/downloads/{unknown}/{action}"), 404,
                     "NOT_FOUND", "Download not found.")
        assert_error(client.simulate_post(f"/api/batches/{unknown}/{action}"), 404,
                     "NOT_FOUND", "Batch not found.")
    assert_error(client.simulate_delete(f"/api/batches/{unknown}"), 404, "NOT_FOUND",
                 "Batch not found.")
    assert_error(client.simulate_put(f"/api/downloads/{unknown}"), 405, "METHOD_NOT_ALLOWED")


def test_list_states_order_and_pages(client: TestClient, runtime: Runtime,
                                     origin: MediaOrigin) -> None:
    finished = seed_history(runtime, 3)
    skipped = seed_history(runtime, 1, status="skip")
    errored = seed_history(runtime, 2, status="error")
    cancelled = seed_history(runtime, 1, status="cancelled")
    runtime.engine.set_paused(True)  # waiting items stay waiting
    queued = [add(client, {"url": origin.clip_url})["id"] for _ in range(2)]
    paused = add(client, {"url": origin.clip2_url, "auto_start": False})["id"]
    assert task(client, paused)["state"] == "paused"

    def ids(query: str) -> list[str]:
        response = client.simulate_get(f"/api/downloads?{query}")
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json["tasks"]]

    assert ids("status=queued") == queued
    assert ids("status=paused") == [paused]
    assert ids("status=downloading") == []
    # history: newest first; completed = finished + skip, failed = error + cancelled
    assert ids("status=completed") == [i.id for i in reversed(finished + skipped)]
    assert ids("status=failed") == [i.id for i in reversed(errored + cancelled)]
    # everything: the queue (oldest first), then the history (newest first)
    history = [i.id for i in reversed(finished + skipped + errored + cancelled)]
    everything = [*queued, paused, *history]
    assert ids("limit=100") == everything
    pages = [client.simulate_get(f"/api/downloads?limit=2&page={n}").json for n in range(1, 7)]
    assert [t["id"] for p in pages for t in p["tasks"]] == everything
    assert {(p["total"], p["pages"]) for p in pages} == {(10, 5)}
    assert pages[1]["tasks"][0]["state"] == "paused"  # a page across queue and history
    assert pages[1]["tasks"][1]["state"] == "failed"
    assert pages[5]["tasks"] == []
    runtime.engine.set_paused(False)


@pytest.mark.parametrize(("query", "text"), [
    ("status=done", "status must be one of queued, downloading, paused, completed, failed, "
                    "cancelled (any case)."),
    ("limit=0", "limit must be between 1 and 1000."),
    ("limit=1001", "limit must be between 1 and 1000."),
    ("limit=ten", "page and limit must be valid integers."),
    ("page=0", "page must be >= 1."),
    ("page=-1&limit=5", "page must be >= 1."),
])
def test_list_bad_query(client: TestClient, query: str, text: str) -> None:
    assert_error(client.simulate_get(f"/api/downloads?{query}"), 400, "INVALID_REQUEST", text)


def test_list_pages_in_sql_over_a_large_history(client: TestClient, runtime: Runtime) -> None:
    seed_history(runtime, 3000)
    seed_history(runtime, 500, status="error")
    deep = client.simulate_get("/api/downloads?status=completed&limit=1000&page=3")
    assert deep.headers["Total-Count"] == "3000" and deep.headers["Count"] == "1000"
    assert {t["state"] for t in deep.json["tasks"]} == {"completed"}
    tail = client.simulate_get("/api/downloads?limit=1000&page=4").json
    assert (tail["total"], tail["pages"], len(tail["tasks"])) == (3500, 4, 500)


def test_pause_resume_and_delete_a_running_download(client: TestClient, runtime: Runtime,
                                                    origin: MediaOrigin) -> None:
    added = add(client, {"url": origin.slow_url})
    wait_state(client, added["id"], {"downloading"})
    wait_for(lambda: (task(client, added["id"])["downloaded_bytes"] or 0) > 0,
             message="bytes to arrive")
    paused = client.simulate_post(f"/api/downloads/{added['id']}/pause")
    assert paused.status_code == 200 and paused.json == {"id": added["id"], "state": "paused"}
    wait_state(client, added["id"], {"paused"})
    assert client.simulate_get("/api/downloads?status=paused").json["total"] == 1
    resumed = client.simulate_post(f"/api/downloads/{added['id']}/resume")
    assert resumed.json == {"id": added["id"], "state": "queued"}
    wait_state(client, added["id"], {"downloading"})
    deleted = client.simulate_delete(f"/api/downloads/{added['id']}")
    assert deleted.status_code == 200 and deleted.json == {"success": True}
    wait_for(lambda: client.simulate_get(f"/api/downloads/{added['id']}").status_code == 404,
             message="the running download to be deleted")
    assert_error(client.simulate_delete(f"/api/downloads/{added['id']}"), 404, "NOT_FOUND")
    assert_error(client.simulate_delete(f"/api/downloads/{new_id()}?remove_file=maybe"), 400,
                 "INVALID_REQUEST", "remove_file must be true or false.")


def test_pause_or_resume_of_history_is_a_conflict(client: TestClient,
                                                  runtime: Runtime) -> None:
    [done] = seed_history(runtime, 1)
    for action in ("pause", "resume"):
        assert_error(client.simulate_post(f"/api/downloads/{done.id}/{action}"), 409,
                     "CONFLICT", "this one is completed")
    assert client.simulate_delete(f"/api/downloads/{done.id}").json == {"success": True}
    assert runtime.store.get(done.id) is None


# --- batches ----------------------------------------------------------------------------


def test_playlist_is_a_batch_with_counts(client: TestClient, runtime: Runtime,
                                         origin: MediaOrigin) -> None:
    added = add(client, {"url": origin.playlist_url})

    def finished() -> dict | None:
        found = batch(client, added["id"])
        return found if found and found["completed_items"] == 3 else None

    summary = wait_for(finished, timeout=120, message="the playlist's 3 entries to finish")
    sizes = sum((origin.path_for(u)).stat().st_size for u in origin.playlist_entry_urls)
    assert summary == {
        "batch_id": added["id"],
        "batch_name": summary["batch_name"],
        "total_items": 3,
        "completed_items": 3,
        "failed_items": 0,
        "progress": 100.0,
        "total_size": sizes,
        "downloaded_size": sizes,
        # today's Flasharr reads these too
        "downloading_items": 0,
        "paused_items": 0,
        "queued_items": 0,
        "speed": 0,
        "state": "completed",
        "created_at": summary["created_at"],
    }
    assert summary["created_at"].endswith("Z")
    assert summary["batch_name"]  # the playlist's title
    tasks = client.simulate_get("/api/downloads?status=completed").json["tasks"]
    assert {t["batch_id"] for t in tasks} == {added["id"]}
    # a batch can be deleted whole
    deleted = client.simulate_delete(f"/api/batches/{added['id']}")
    assert deleted.json == {"success": True, "deleted": 3, "affected": 3}
    assert batch(client, added["id"]) is None
    assert client.simulate_get("/api/downloads").json["total"] == 0
    assert_error(client.simulate_delete(f"/api/batches/{added['id']}"), 404, "NOT_FOUND")


def test_batches_are_newest_first_wherever_their_items_are(
        client: TestClient, runtime: Runtime) -> None:
    """A batch still waiting in the queue was put before every batch of the history, however
    old it was."""
    waiting = add(client, {"url": "http://127.0.0.1:9/old", "batch_id": "older",
                           "auto_start": False})
    assert runtime.engine.get(waiting["id"]).kind == "queue"
    done = [Item(id=new_id(), url=f"http://x.invalid/{status}", kind="done", status=status,
                 batch_id="newer", created_at=runtime.store.stamp())
            for status in ("finished", "error", "cancelled")]
    runtime.store.insert(done)
    summaries = client.simulate_get("/api/batches").json["batches"]
    assert [b["batch_id"] for b in summaries] == ["newer", "older"]
    assert {k: summaries[0][k] for k in ("total_items", "completed_items", "failed_items",
                                         "state")} == {
        "total_items": 3, "completed_items": 1, "failed_items": 2, "state": "failed"}
    rows = client.simulate_get("/api/downloads/batches").json["batches"]
    assert [b["batch_id"] for b in rows] == ["newer", "older"]


def test_a_batch_sums_its_running_downloads_live() -> None:
    """The queue's items count by their live figures; finished history by the store's."""
    totals = [{"batch_id": "b", "batch_name": "", "statuses": {"finished": 1},
               "total_bytes": 100, "downloaded_bytes": 100, "created_at": 5.0}]
    queue = summed([
        Item(id="r1", url="u", batch_id="b", batch_name="B", status="downloading",
             percent=50.0, speed=1000.0, total_bytes=200, downloaded_bytes=100,
             created_at=3.0),
        Item(id="w1", url="u", batch_id="b", status="pending", auto_start=False,
             created_at=4.0),
        Item(id="x", url="u", batch_id="", status="downloading", speed=7.0)])
    [summary] = mapping.batches(totals, queue)
    only_queued = mapping.batches([], summed([Item(id="q", url="u", batch_id="q",
                                                   total_bytes=7, downloaded_bytes=2)]))
    assert [(b["total_size"], b["downloaded_size"], b["state"]) for b in only_queued] == [
        (7, 2, "queued")]
    assert summary == {
        "batch_id": "b", "batch_name": "B", "total_items": 3, "completed_items": 1,
        "failed_items": 0, "downloading_items": 1, "paused_items": 1, "queued_items": 0,
        "progress": 50.0, "total_size": 300, "downloaded_size": 200, "speed": 1000.0,
        "state": "downloading", "created_at": "1970-01-01T00:00:03Z"}


def test_kept_batch_summaries_are_what_a_build_afresh_gives_after_every_change(
        client: TestClient, runtime: Runtime) -> None:
    """The history's summaries are kept from one store write to the next (2,000 batches took
    25-50 ms to build at each poll); a write, or a queue item of a batch, shows at once."""

    def done(batch_id: str, status: str, size: int = 10) -> Item:
        return Item(id=new_id(), url=f"http://x.invalid/{batch_id}/{new_id()}", kind="done",
                    status=status, batch_id=batch_id, batch_name=batch_id.upper(),
                    total_bytes=size, downloaded_bytes=size, created_at=runtime.store.stamp())

    def afresh() -> list[dict[str, Any]]:
        return mapping.batches(runtime.store.batch_totals(),
                               summed(runtime.engine.queue_items()))

    def polled() -> list[dict[str, Any]]:
        answer = client.simulate_get("/api/batches").json["batches"]
        assert answer == afresh()
        rows = client.simulate_get("/api/downloads/batches", params={"limit": "1000"})
        assert rows.json["batches"] == answer
        return answer

    old = [done("a", "finished"), done("a", "error"), done("b", "finished")]
    runtime.store.insert(old)
    first = polled()
    assert [(b["batch_id"], b["total_items"]) for b in first] == [("b", 1), ("a", 2)]
    assert polled() == first
    runtime.store.insert([done("a", "finished", 5)])  # a write: seen at the next poll
    assert [(b["batch_id"], b["total_items"], b["total_size"]) for b in polled()] == [
        ("b", 1, 10), ("a", 3, 25)]
    runtime.engine.delete_items([old[2].id], remove_file=False, kind="done")
    assert [b["batch_id"] for b in polled()] == ["a"]
    waiting = add(client, {"url": "http://127.0.0.1:9/w", "batch_id": "a", "auto_start": False})
    summaries = polled()  # a queue item changes its batch, not the store's totals
    assert [(b["batch_id"], b["total_items"], b["paused_items"]) for b in summaries] == [
        ("a", 4, 1)]
    runtime.engine.delete_items([waiting["id"]], remove_file=False)
    assert [(b["batch_id"], b["total_items"]) for b in polled()] == [("a", 3)]
    # The same with the summaries kept: only the queue's batches are built again.
    totals = runtime.store.batch_totals()
    assert runtime.store.batch_totals() is totals  # (until the next write)
    kept = mapping.history_batches(totals)
    queue = summed([Item(id="q", url="u", batch_id="a", status="downloading", percent=50.0,
                         created_at=1.0), Item(id="n", url="u", batch_id="new")])
    assert mapping.batches(totals, queue, kept) == mapping.batches(totals, queue)
    assert kept["a"][1]["total_items"] == 3  # (the kept one is not changed by the queue's)


def test_a_batchs_items_come_a_page_at_a_time_oldest_first(client: TestClient,
                                                          runtime: Runtime) -> None:
    """A subscription's batch grows for years: its items were all one answer (20,000 of a
    channel's uploads, megabytes). Pages of ``limit`` (1,000 by default), the FlexGet headers
    saying the rest; a queued item with its live figures."""
    stamp = runtime.store.stamp()
    stored = [Item(id=f"{n:02d}-{new_id()}", url=f"http://x.invalid/{n}", kind="done",
                   status="finished", batch_id="b", created_at=stamp - 100 + n // 2,
                   updated_at=stamp) for n in range(25)]  # (two of each time: the id breaks it)
    runtime.store.insert(stored)
    waiting = add(client, {"url": "http://127.0.0.1:9/w", "batch_id": "b",
                           "auto_start": False})
    order = [i.id for i in stored] + [waiting["id"]]
    whole = client.simulate_get("/api/downloads/batch/b/items")
    assert [t["id"] for t in whole.json] == order
    assert (whole.headers["total-count"], whole.headers["count"]) == ("26", "26")
    assert whole.json[-1]["state"] == "paused"  # the engine's item, live
    seen, url = [], "/api/downloads/batch/b/items?limit=7"
    while True:
        path, _, query = url.partition("?")
        answer = client.simulate_get(path, query_string=query)
        assert answer.status_code == 200 and answer.headers["total-count"] == "26"
        seen += [t["id"] for t in answer.json]
        found = re.search(r'<[^>]*(/api/[^>]*)>; rel="next"', answer.headers["link"])
        if found is None:
            break
        url = found[1]
    assert seen == order
    past = client.simulate_get("/api/downloads/batch/b/items", params={"page": "9",
                                                                       "limit": "7"})
    assert (past.status_code, past.json, past.headers["count"]) == (200, [], "0")
    for query in ("limit=0", "limit=1001", "page=0", "page=x"):
        assert_error(client.simulate_get("/api/downloads/batch/b/items", query_string=query),
                     400, "INVALID_REQUEST")
    assert_error(client.simulate_get("/api/downloads/batch/nope/items"), 404, "NOT_FOUND")


def test_retry_adds_the_same_request_again(client: TestClient, runtime: Runtime) -> None:
    failed = Item(id=new_id(), url="http://127.0.0.1:9/again", kind="done", status="error",
                  batch_id="b9", batch_name="Nine", folder="sub", template="%(id)s.%(ext)s",
                  cli="--no-mtime", extras={"note": "kept"}, auto_start=False,
                  created_at=runtime.store.stamp())
    runtime.store.insert([failed])
    retried = client.simulate_post(f"/api/downloads/{failed.id}/retry")
    assert retried.status_code == 200, retried.text
    again = runtime.engine.get(retried.json["id"])
    assert again is not None and again.id != failed.id
    assert (again.url, again.batch_id, again.batch_name, again.folder, again.template,
            again.cli, again.extras.get("note"), again.auto_start) == (
        failed.url, "b9", "Nine", "sub", "%(id)s.%(ext)s", "--no-mtime", "kept", True)
    assert runtime.engine.get(failed.id) is None


def test_a_retry_asked_twice_at_once_queues_it_once(client: TestClient, runtime: Runtime,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A double click (or an automation fired twice): the second retry came while the first
    was adding, passed the same check, and queued the download a second time."""
    failed = Item(id=new_id(), url="http://127.0.0.1:9/twice", kind="done", status="error",
                  auto_start=False, created_at=runtime.store.stamp())
    runtime.store.insert([failed])
    adding, release = threading.Event(), threading.Event()
    add = runtime.engine.add

    def held_add(*args: Any, **kwargs: Any) -> Any:
        if not adding.is_set():  # the first retry waits in its add for the second's answer
            adding.set()
            assert release.wait(30)
        return add(*args, **kwargs)

    monkeypatch.setattr(runtime.engine, "add", held_add)
    answers: list[Any] = []
    first = threading.Thread(target=lambda: answers.append(
        client.simulate_post(f"/api/downloads/{failed.id}/retry")))
    first.start()
    assert adding.wait(30)
    second = client.simulate_post(f"/api/downloads/{failed.id}/retry")
    release.set()
    first.join(30)
    assert_error(second, 409, "CONFLICT", "being retried already")
    assert answers[0].status_code == 200, answers[0].text
    queued = [i for i in runtime.engine.queue_items() if i.url == failed.url]
    assert [i.id for i in queued] == [answers[0].json["id"]]
    # and once it is done, the old one is gone: a retry of it again is unknown
    assert client.simulate_post(f"/api/downloads/{failed.id}/retry").status_code == 404


def test_batch_pause_resume_and_partial_counts(client: TestClient, runtime: Runtime,
                                               origin: MediaOrigin) -> None:
    runtime.engine.set_paused(True)
    members = [add(client, {"url": url, "batch_id": "season-1", "batch_name": "Season 1"})
               for url in (origin.clip_url, origin.clip2_url)]
    other = add(client, {"url": origin.short_url, "auto_start": False})
    summary = batch(client, "season-1")
    assert summary is not None
    assert (summary["batch_name"], summary["total_items"], summary["completed_items"],
            summary["progress"]) == ("Season 1", 2, 0, 0.0)

    paused = client.simulate_post("/api/batches/season-1/pause")
    assert paused.status_code == 200
    assert paused.json == {"batch_id": "season-1", "state": "paused", "items": 2,
                           "success": True, "affected": 2}
    assert {task(client, m["id"])["state"] for m in members} == {"paused"}
    assert task(client, other["id"])["state"] == "paused"
    runtime.engine.set_paused(False)  # the system runs again; the batch stays paused
    assert {task(client, m["id"])["state"] for m in members} == {"paused"}

    resumed = client.simulate_post("/api/batches/season-1/resume")
    assert resumed.json == {"batch_id": "season-1", "state": "queued", "items": 2,
                            "success": True, "affected": 2}
    for member in members:
        assert wait_state(client, member["id"], {"completed", "failed"})["state"] == "completed"
    summary = batch(client, "season-1")
    assert summary is not None
    assert (summary["total_items"], summary["completed_items"], summary["progress"]) == (
        2, 2, 100.0)
    assert task(client, other["id"])["state"] == "paused"  # not in the batch
    # a batch with nothing left in the queue: found, nothing to pause
    again = client.simulate_post("/api/batches/season-1/pause")
    assert again.json == {"batch_id": "season-1", "state": "paused", "items": 0,
                          "success": True, "affected": 0}
