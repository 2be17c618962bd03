"""Tasks created with ``"mark": true`` whose entries the request could not list in time.

The listings of a create request are bounded for all (``service.LISTINGS_TIMEOUT``): an
array of 500 marked tasks of a slow site held the request for an hour (every feed listed,
two at once, each up to its time limit), and a client that gave up and asked again made
every task twice. What is not listed by the bound is created with its mark still to be
made: its first run, started at once, marks every entry it sees and queues none, and until
a run has made it no run queues the back catalogue. Real feeds from the local origin, the
real runtime in process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon.testing
import pytest
from support.feeds import FeedEntry
from support.origin import MediaOrigin
from support.server import wait_for
from support.task_runs import run_now

from appliance.runtime import Runtime
from appliance.tasks import service
from appliance.tui.views.subscriptions import outcome

Client = falcon.testing.TestClient
CATALOGUE = 4  # entries each feed has when its task is made


def _feed(origin: MediaOrigin, name: str) -> str:
    origin.feeds.set(name, [FeedEntry(id=f"{name}-{n}", url=f"{origin.clip_url}?{name}={n}",
                                      title=f"{name} {n}") for n in range(CATALOGUE)])
    return f"{origin.base_url}/feeds/{name}.rss"


def _executions(client: Client, task: dict[str, Any]) -> list[dict[str, Any]]:
    answer = client.simulate_get("/api/executions", params={"task_id": task["id"]})
    assert answer.status_code == 200, answer.text
    return answer.json["items"]


def _ended(client: Client, task: dict[str, Any], count: int = 1) -> list[dict[str, Any]]:
    """The task's runs once ``count`` of them have ended, newest first."""
    def ended() -> list[dict[str, Any]] | None:
        runs = _executions(client, task)
        done = [run for run in runs if run["status"] != "running"]
        return runs if len(done) >= count and len(done) == len(runs) else None
    return wait_for(ended, timeout=60, message=f"{count} run(s) of task {task['id']}")


@pytest.fixture
def bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "LISTINGS_TIMEOUT", 2.0)


@pytest.mark.usefixtures("bounded")
def test_marks_not_listed_in_time_are_made_by_the_first_run(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    quick = [_feed(origin, f"quick{n}") for n in range(2)]
    slow = [_feed(origin, f"slow{n}") for n in range(4)]
    gates = [origin.feeds.hold(f"slow{n}") for n in range(4)]
    try:
        made = client.simulate_post("/api/tasks", json=[
            {"name": "q0", "url": quick[0], "timer": "0 0 1 1 *", "mark": True,
             "auto_start": False},
            {"name": "q1", "url": quick[1]},
            *({"name": f"s{n}", "url": url} for n, url in enumerate(slow))])
        assert made.status_code == 200, made.text
        tasks = made.json
        assert [t["mark_pending"] for t in tasks] == [False, False, True, True, True, True]
        assert [outcome(t).plain for t in tasks[1:3]] == ["never run", "to be marked"]
    finally:
        for gate in gates:
            gate.set()
    for task in tasks[2:]:
        [first] = _ended(client, task)
        assert (first["trigger"], first["status"], first["found"], first["queued"],
                first["skipped"]) == ("create", "success", CATALOGUE, 0, CATALOGUE), first
        assert not client.simulate_get(f"/api/tasks/{task['id']}").json["mark_pending"]
    for task in tasks:  # marked either way: nothing of the back catalogue is queued
        assert run_now(runtime, task)["queued"] == 0
    for n in range(4):
        origin.feeds.add(f"slow{n}", FeedEntry(id=f"new{n}", url=f"{origin.clip_url}?new={n}"))
    assert [run_now(runtime, task)["queued"] for task in tasks[2:]] == [1, 1, 1, 1]


@pytest.mark.usefixtures("bounded")
def test_a_mark_that_cannot_be_made_queues_nothing_until_a_run_makes_it(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The feed was slow at creation, then fails: runs fail and say why, and queue none of
    the catalogue; once it answers, a run marks it all, and only what comes later is new."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    url = _feed(origin, "flaky")
    gate = origin.feeds.hold("flaky")
    try:
        made = client.simulate_post("/api/tasks", json={
            "name": "flaky", "url": url, "timer": "0 0 1 1 *", "mark": True})
        assert made.status_code == 200, made.text
        task = made.json
        assert task["mark_pending"] is True
        origin.feeds.fail("flaky", 500)
    finally:
        gate.set()
    [first] = _ended(client, task)
    assert (first["trigger"], first["status"], first["queued"]) == ("create", "failed", 0)
    assert "nothing was queued" in first["error"] and "500" in first["error"], first
    state = client.simulate_get(f"/api/tasks/{task['id']}").json
    assert state["mark_pending"] is True and state["last_status"] == "failed", state
    assert "nothing was queued" in state["last_error"]
    origin.feeds.set("flaky", [FeedEntry(id=f"flaky-{n}", url=f"{origin.clip_url}?flaky={n}")
                               for n in range(CATALOGUE)])
    second = run_now(runtime, task)
    assert (second["status"], second["queued"], second["skipped"]) == \
        ("success", 0, CATALOGUE), second
    assert not runtime.tasks.get(task["id"])["mark_pending"]
    origin.feeds.add("flaky", FeedEntry(id="later", url=f"{origin.clip_url}?flaky=later"))
    assert run_now(runtime, task)["queued"] == 1


@pytest.mark.usefixtures("bounded")
def test_a_mark_made_or_forgot_by_hand_settles_it(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """POST …/mark makes the mark a run would; DELETE …/mark forgets it with the others (the
    person asked for the back catalogue): neither leaves it to be made again."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    urls = [_feed(origin, name) for name in ("byhand", "forgot")]
    origin.feeds.fail("byhand", 500)
    origin.feeds.fail("forgot", 500)
    gates = [origin.feeds.hold(name) for name in ("byhand", "forgot")]
    try:
        made = client.simulate_post("/api/tasks", json=[
            {"name": "byhand", "url": urls[0], "timer": "0 0 1 1 *", "mark": True},
            {"name": "forgot", "url": urls[1]}])
        assert made.status_code == 200, made.text
    finally:
        for gate in gates:
            gate.set()
    byhand, forgot = made.json
    for task in (byhand, forgot):
        assert _ended(client, task)[0]["status"] == "failed"
    _feed(origin, "byhand")
    _feed(origin, "forgot")
    marked = client.simulate_post(f"/api/tasks/{byhand['id']}/mark")
    assert marked.status_code == 200, marked.text
    forgotten = client.simulate_delete(f"/api/tasks/{forgot['id']}/mark")
    assert forgotten.status_code == 200, forgotten.text
    assert [runtime.tasks.get(t["id"])["mark_pending"] for t in (byhand, forgot)] == \
        [False, False]
    assert run_now(runtime, byhand)["queued"] == 0
    assert run_now(runtime, forgot)["queued"] == CATALOGUE


def test_a_broken_feed_read_in_time_is_still_refused(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The bound defers only what it cut short: a listing that fails within it refuses the
    request, nothing created, as before."""
    _, client = app_with(YTP_TASKS_SPREAD="0")
    good = _feed(origin, "good")
    origin.feeds.fail("broken", 500)
    refused = client.simulate_post("/api/tasks", json=[
        {"name": "good", "url": good, "mark": True},
        {"name": "broken", "url": f"{origin.base_url}/feeds/broken.rss"}])
    assert refused.status_code == 400, refused.text
    assert "Could not list the task's entries" in refused.json["error"]
    assert client.simulate_get("/api/tasks").json["items"] == []
