"""How a target's lane merges and delivers what the bus carries: a playlist's entries replace
the item it was added as, a playlist's finished entries wait for its last one, no merging when
the window is 0, a target that stops being a chat target mid-burst, a deleted or disabled
target's lane ending, and a target's failures never notified to targets themselves.

Events are published on the service's real bus; chat targets are real Apprise (``json://``)
and webhooks real requests, both to a receiver on 127.0.0.1 in this process.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from falcon.testing import TestClient
from support.server import wait_for
from support.webhooks import Receiver, event_of, send, target

from appliance.api.app import create_app
from appliance.notify.messages import Burst
from appliance.notify.outbox import LANE_SIZE
from appliance.runtime import Runtime

WINDOW = 0.3


@pytest.fixture(name="receiver")
def _receiver(start_runtime: Callable[..., Runtime]) -> Iterator[Receiver]:
    # Made after start_runtime, so closed before its runtimes stop: a send still hanging on
    # it is answered then, and no stop waits out its drain and grace (8 s) for it.
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(name="service")
def _service(start_runtime: Callable[..., Runtime]) -> Runtime:
    return start_runtime(YTP_NOTIFY_TIMEOUT="5", YTP_NOTIFY_RETRIES="0",
                         YTP_NOTIFY_BURST_WINDOW=str(WINDOW))


def _titles(receiver: Receiver, path: str) -> list[str]:
    return [hit.json()["title"] for hit in receiver.to(path)]


def _entry(n: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"e{n}", "title": f"Entry {n}", "batch_id": "P", "batch_name": "My list",
            **extra}


def test_a_playlists_entries_replace_the_item_it_was_added_as(
        receiver: Receiver, service: Runtime) -> None:
    client = TestClient(create_app(service))
    target(client, "chat", receiver.url("/chat", scheme="json"),
           on=["item_added", "item_deleted"])
    service.bus.publish("item_added", {"id": "P", "title": "https://example.org/list"})
    service.bus.publish("item_added", {"id": "other", "title": "Other"})
    service.bus.publish("item_deleted", {"id": "P", "title": "https://example.org/list"})
    for n in (1, 2):
        service.bus.publish("item_added", _entry(n))
    wait_for(lambda: len(receiver.to("/chat")) == 2, message="two queued summaries")
    assert sorted(_titles(receiver, "/chat")) == ["Queued 2 items from My list",
                                                  "Queued: Other"]


def test_a_playlists_finished_entries_wait_for_its_last_one(
        receiver: Receiver, service: Runtime) -> None:
    client = TestClient(create_app(service))
    target(client, "chat", receiver.url("/chat", scheme="json"),
           on=["item_completed", "item_error", "paused"])
    for n in (1, 2, 3):
        service.bus.publish("item_added", _entry(n))
    service.bus.publish("item_completed", {"id": "e1", "status": "finished"})
    service.bus.publish("item_error", {"id": "e2", "error": "HTTP 403"})
    # Other events are not held: this one passes the held entries.
    service.bus.publish("paused", {"paused": True})
    wait_for(lambda: receiver.to("/chat"), message="the paused message")
    # The window passes several times over while entry 3 is still queued: nothing is sent.
    quiet_until = time.monotonic() + 4 * WINDOW
    wait_for(lambda: time.monotonic() > quiet_until, message="a quiet while")
    assert _titles(receiver, "/chat") == ["Downloads paused"]
    service.bus.publish("item_completed", {"id": "e3", "status": "finished"})
    wait_for(lambda: len(receiver.to("/chat")) == 2, message="the playlist's summary")
    summary = receiver.to("/chat")[1].json()
    assert summary["title"] == "Downloaded 2 of 3 items from My list"
    assert summary["type"] == "warning"
    assert summary["message"].splitlines() == ["1 failed", "✗ Entry 2 — HTTP 403",
                                               "✓ Entry 1", "✓ Entry 3"]


def test_no_merging_when_the_window_is_zero(receiver: Receiver,
                                            start_runtime: Callable[..., Runtime]) -> None:
    service = start_runtime(YTP_NOTIFY_BURST_WINDOW="0")
    client = TestClient(create_app(service))
    target(client, "chat", receiver.url("/chat", scheme="json"), on=["item_completed"])
    for n in (1, 2):
        service.bus.publish("item_added", _entry(n))
        service.bus.publish("item_completed", {"id": f"e{n}", "status": "finished"})
    wait_for(lambda: len(receiver.to("/chat")) == 2, message="one message per download")
    assert _titles(receiver, "/chat") == ["Downloaded: Entry 1", "Downloaded: Entry 2"]


def test_a_burst_held_for_a_chat_target_that_became_a_webhook(
        receiver: Receiver, service: Runtime) -> None:
    client = TestClient(create_app(service))
    chat = target(client, "chat", receiver.url("/chat", scheme="json"), on=["item_completed"])
    for n in (1, 2, 3):
        service.bus.publish("item_added", _entry(n))
    service.bus.publish("item_completed", {"id": "e1", "status": "finished"})
    published = time.time()
    lane = wait_for(lambda: service.notifier._lanes.get(f"db:{chat['id']}"),
                    message="the chat target's lane")
    wait_for(lambda: lane.groups, message="the completion held")
    changed = send(client, "PATCH", f"/api/notifications/{chat['id']}",
                   {"request": {"url": receiver.url("/hook")}})
    patched = time.time()
    assert changed.status_code == 200, changed.text
    service.bus.publish("item_completed", {"id": "e2", "status": "finished"})
    service.bus.publish("item_completed", {"id": "e3", "status": "finished"})
    hits = wait_for(lambda: len(h := receiver.to("/hook")) == 3 and h,
                    message="each completion as its own webhook call")
    assert sorted(event_of(h)["data"]["id"] for h in hits) == ["e1", "e2", "e3"]
    assert {event_of(h)["event"] for h in hits} == {"item_completed"}
    assert receiver.to("/chat") == []
    # each as it happened: e1 before the change, not when the burst was sent after it
    [first] = [event_of(h) for h in hits if event_of(h)["data"]["id"] == "e1"]
    assert datetime.datetime.fromisoformat(first["created_at"]).timestamp() <= published < patched


def test_a_deleted_or_disabled_targets_lane_ends(receiver: Receiver,
                                                 service: Runtime) -> None:
    client = TestClient(create_app(service))
    gone = target(client, "gone", receiver.url("/gone"), on=["paused", "resumed"])
    off = target(client, "off", receiver.url("/off"), on=["paused", "resumed"])
    target(client, "stays", receiver.url("/stays"), on=["paused", "resumed"])
    service.bus.publish("paused", {"paused": True})
    wait_for(lambda: all(receiver.to(p) for p in ("/gone", "/off", "/stays")),
             message="the first event at each target")
    lanes = dict(service.notifier._lanes)
    assert client.simulate_delete(f"/api/notifications/{gone['id']}").status_code == 200
    assert send(client, "PATCH", f"/api/notifications/{off['id']}",
                {"enabled": False}).status_code == 200
    service.bus.publish("resumed", {"paused": False})
    wait_for(lambda: len(receiver.to("/stays")) == 2, message="the second event")
    for key in (f"db:{gone['id']}", f"db:{off['id']}"):
        wait_for(lambda key=key: not lanes[key].thread.is_alive(), message=f"{key}'s lane end")
        assert key not in service.notifier._lanes
    assert len(receiver.to("/gone")) == len(receiver.to("/off")) == 1


def test_a_targets_failure_is_never_notified_itself(receiver: Receiver,
                                                    service: Runtime) -> None:
    client = TestClient(create_app(service))
    failing = target(client, "fails", receiver.url("/bad"), on=["paused"])
    target(client, "logs", receiver.url("/logs"), on=["log_warning", "log_error", "paused"])
    service.bus.publish("paused", {"paused": True})
    wait_for(lambda: service.notifications.get(failing["id"])["last_status"],
             message="the failure recorded")
    # Any other warning is news for the target that asked for warnings.
    service.bus.message("warning", "Disk", "Disk almost full")
    wait_for(lambda: any(event_of(h)["data"].get("message") == "Disk almost full"
                         for h in receiver.to("/logs")), message="the disk warning")
    told = [event_of(h) for h in receiver.to("/logs")]
    assert told[0]["event"] == "paused"
    assert not [e for e in told if "fails" in str(e["data"])], told


def test_a_hanging_target_holds_a_bounded_backlog_and_never_the_exit(
        receiver: Receiver, service: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    """Past LANE_SIZE waiting the OLDEST go (they were the newest, one warning each: a line
    per event of a burst), their outbox rows with them, said in one warning for the burst."""
    client = TestClient(create_app(service))
    hook = target(client, "hangs", receiver.url("/hang"), on=["log_info"])
    over = 50
    with caplog.at_level(logging.WARNING, logger="appliance.notify"):
        service.bus.message("info", "first", "first")
        wait_for(lambda: receiver.to("/hang"), message="the first send, hanging")
        for n in range(LANE_SIZE + over):
            service.bus.message("info", "more", f"event {n}")
        lane = service.notifier._lanes[f"db:{hook['id']}"]
        [dropped] = wait_for(lambda: [r for r in caplog.records if "dropped" in r.getMessage()],
                             message="the warning about the dropped events")
    assert dropped.getMessage() == (
        f"notification target 'hangs' had more than {LANE_SIZE} notices waiting (10000 in all "
        f"targets at most): the oldest {over} were dropped")
    waiting = [job.notice.data["message"] for job in lane.jobs.queue]
    assert waiting == [f"event {n}" for n in range(over, LANE_SIZE + over)]
    # the outbox keeps what waits (and the send in flight), not what went
    assert client.simulate_get(f"/api/notifications/{hook['id']}").json["waiting"] == \
        LANE_SIZE + 1
    # A send still hanging when the service stops must not keep the process alive.
    assert lane.thread.daemon


def test_a_stop_gives_a_send_in_flight_a_bounded_while_then_leaves_it(
        receiver: Receiver, start_runtime: Callable[..., Runtime],
        caplog: pytest.LogCaptureFixture) -> None:
    # A send may take 10 s: longer than the stop's 3 s drain and the 5 s it then gives.
    service = start_runtime(YTP_NOTIFY_TIMEOUT="10", YTP_NOTIFY_RETRIES="0")
    client = TestClient(create_app(service))
    target(client, "hangs", receiver.url("/hang"), on=["paused"])
    service.bus.publish("paused", {"paused": True})
    wait_for(lambda: receiver.to("/hang"), message="the hanging send")
    [lane] = service.notifier._lanes.values()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="appliance.notify"):
        service.notifier.stop()
    # The drain and the grace were given (a lower bound: a busy box only adds to it)...
    assert time.monotonic() - started >= 3 + 5
    # ...and not the send's own timeout: the stop came back with the send still in flight.
    assert lane.thread.is_alive()
    assert "notification threads still sending after the stop: ['hangs']" in caplog.text


def test_events_waiting_behind_a_hanging_send_go_where_the_target_points_now(
        receiver: Receiver, start_runtime: Callable[..., Runtime]) -> None:
    """A person moves a target away from a receiver that hangs (or stops wanting an event):
    what waited in its lane behind the hanging send went to the old URL anyway, each with
    its timeout and retries (hours for a backlog), or was sent though no longer wanted."""
    service = start_runtime(YTP_NOTIFY_TIMEOUT="2", YTP_NOTIFY_RETRIES="0")
    client = TestClient(create_app(service))
    hook = target(client, "moves", receiver.url("/hang"),
                  on=["paused", "resumed", "log_info"])
    service.bus.publish("paused", {"paused": True})
    wait_for(lambda: receiver.to("/hang"), message="the first send, hanging")
    service.bus.publish("resumed", {"paused": False})
    service.bus.message("info", "Hi", "no longer wanted")
    service.bus.publish("paused", {"paused": True})
    assert send(client, "PATCH", f"/api/notifications/{hook['id']}",
                {"on": ["paused", "resumed"],
                 "request": {"url": receiver.url("/moved")}}).status_code == 200
    wait_for(lambda: len(receiver.to("/moved")) == 2, message="the waiting events, moved")
    assert [event_of(h)["event"] for h in receiver.to("/moved")] == ["resumed", "paused"]
    assert len(receiver.to("/hang")) == 1


def test_a_retry_goes_where_the_target_points_now(
        receiver: Receiver, start_runtime: Callable[..., Runtime]) -> None:
    """A failing target fixed between two tries: the retry goes to the new URL, and a target
    disabled meanwhile gets no more tries."""
    service = start_runtime(YTP_NOTIFY_TIMEOUT="5", YTP_NOTIFY_RETRIES="2",
                            YTP_NOTIFY_RETRY_DELAY="3")
    client = TestClient(create_app(service))
    fixed = target(client, "fixed", receiver.url("/fail"), on=["paused"])
    stopped = target(client, "stopped", receiver.url("/fail-too"), on=["paused"])
    service.bus.publish("paused", {"paused": True})
    wait_for(lambda: receiver.to("/fail") and receiver.to("/fail-too"),
             message="the first tries, failed")
    assert send(client, "PATCH", f"/api/notifications/{fixed['id']}",
                {"request": {"url": receiver.url("/fixed")}}).status_code == 200
    assert send(client, "PATCH", f"/api/notifications/{stopped['id']}",
                {"enabled": False}).status_code == 200
    [hit] = wait_for(lambda: receiver.to("/fixed"), message="the retry at the new URL")
    assert event_of(hit)["event"] == "paused"
    wait_for(lambda: service.notifications.get(fixed["id"])["last_status"] == "ok",
             message="the success recorded")
    assert len(receiver.to("/fail")) == 1
    row = wait_for(lambda: (t := service.notifications.get(stopped["id"]))["last_status"] and t,
                   message="the disabled target's one try recorded")
    assert row["last_error"] == "HTTP 500 Internal Server Error"  # (one attempt: no count)
    assert len(receiver.to("/fail-too")) == 1


def test_a_long_playlist_is_one_summary_held_in_counts(
        receiver: Receiver, service: Runtime) -> None:
    client = TestClient(create_app(service))
    chat = target(client, "chat", receiver.url("/chat", scheme="json"),
                  on=["item_completed"])
    entries = 2 * Burst.HELD + 1
    for n in range(entries):
        service.bus.publish("item_added", _entry(n))
    for n in range(entries - 1):
        service.bus.publish("item_completed", {"id": f"e{n}", "status": "finished",
                                               "file_size": 1000})
    lane = wait_for(lambda: service.notifier._lanes.get(f"db:{chat['id']}"), message="a lane")
    [group] = wait_for(lambda: [g for g in list(lane.groups.values())
                                if g.burst.count() == entries - 1], message="all held")
    assert len(group.burst.briefs) == Burst.HELD  # the rest counted, not held
    service.bus.publish("item_completed", {"id": f"e{entries - 1}", "status": "finished",
                                           "file_size": 1000})
    [hit] = wait_for(lambda: receiver.to("/chat"), message="the playlist's summary")
    assert hit.json()["title"] == f"Downloaded {entries} items from My list"
    assert hit.json()["message"].splitlines()[0] == "401.0 KB in all"


def test_a_lanes_wakeups_and_its_stop_are_no_errors(
        receiver: Receiver, service: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    """A chat lane wakes with no event when a held burst is due, and gets the stop's marker:
    neither is an event to handle (each was once a logged traceback); a stopped notifier
    takes no more events from the bus."""
    client = TestClient(create_app(service))
    target(client, "chat", receiver.url("/chat", scheme="json"), on=["item_completed"])
    with caplog.at_level(logging.INFO, logger="appliance.notify"):
        service.bus.publish("item_completed", {"id": "1", "title": "One"})
        service.bus.publish("item_completed", {"id": "2", "title": "Two"})
        wait_for(lambda: receiver.to("/chat"), message="the burst's summary")
        service.notifier.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    service.bus.publish("item_completed", {"id": "3", "title": "Three"})
    assert service.notifier._events.empty()


def test_what_a_stop_leaves_unsent_is_said_and_kept(
        receiver: Receiver, start_runtime: Callable[..., Runtime],
        caplog: pytest.LogCaptureFixture) -> None:
    """Events still waiting behind a hanging send when the service stops were lost, said
    nowhere; then said lost. Now they wait in the outbox for the next start, said so."""
    service = start_runtime(YTP_NOTIFY_TIMEOUT="6", YTP_NOTIFY_RETRIES="0")
    client = TestClient(create_app(service))
    hook = target(client, "hangs", receiver.url("/hang"), on=["log_info"])
    service.bus.message("info", "first", "first")
    wait_for(lambda: receiver.to("/hang"), message="the first send, hanging")
    for n in range(4):
        service.bus.message("info", "more", f"event {n}")
    [lane] = service.notifier._lanes.values()
    wait_for(lambda: lane.jobs.qsize() == 4, message="four events waiting")
    with caplog.at_level(logging.INFO, logger="appliance.notify"):
        service.notifier.stop()
        wait_for(lambda: not lane.thread.is_alive(), message="the lane's end")
    assert ("4 notification event(s) for 'hangs' wait for the next start: the service "
            "stopped while they waited") in caplog.text
    assert "were not sent" not in caplog.text
    assert len(receiver.to("/hang")) == 1
    # the one in flight timed out with no retry left: given up; the four are kept
    waiting = service.notifier.outbox.store.waiting()
    assert [w.target for w in waiting] == [f"db:{hook['id']}"] * 4
    assert ['"event 0"' in w.notice for w in waiting] == [True, False, False, False]
