"""Notification targets: the API, delivery to real local receivers through the real engine,
isolation of slow and failing targets, retries, burst merging, masking, apprise.yml.

Every receiver is an HTTP server in this process on 127.0.0.1; nothing leaves the machine
(targets with other hosts are only validated, never enabled).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import client_of_module, make_settings, started
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for
from support.webhooks import Receiver, event_of, post, send, target

from appliance.api.app import create_app
from appliance.config import Settings
from appliance.events import Event, EventBus
from appliance.notify import EVENTS, Notifier
from appliance.notify.messages import describe, summarize
from appliance.runtime import Runtime

RETRIES = 2


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Short waits so that retries and merging happen within a test; a send timeout long
    # enough that a hanging target is clearly still hanging while the rest goes on.
    return make_settings(tmp_path, YTP_NOTIFY_TIMEOUT="5", YTP_NOTIFY_RETRIES=str(RETRIES),
                         YTP_NOTIFY_RETRY_DELAY="0.05", YTP_NOTIFY_BURST_WINDOW="0.5")


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from client_of_module(tmp_path_factory, "refusing")


def wait_done(client: TestClient, item_id: str, timeout: float = 90) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        item = client.simulate_get(f"/api/history/{item_id}").json
        return item if item["kind"] == "done" else None

    return wait_for(done, timeout=timeout, message=f"{item_id} to finish")


# --- delivery through the real engine -----------------------------------------------------


def test_download_notifies_json_and_form_webhooks_and_apprise(
    receiver: Receiver, client: TestClient, runtime: Runtime, origin: MediaOrigin
) -> None:
    as_json = target(client, "json hook", receiver.url("/json"), on=["item_completed"],
                     request={"type": "json", "method": "POST", "data_key": "payload",
                              "headers": [{"key": "X-Token", "value": "tok-123456789"}]})
    as_form = target(client, "form hook", receiver.url("/form"), on=["item_completed"],
                     request={"type": "form", "method": "PUT", "data_key": "event"})
    chat = target(client, "chat", receiver.url("/apprise", scheme="json"),
                  on=["item_completed"])
    [queued] = post(client, "/api/history", {"url": origin.clip_url}).json
    item = wait_done(client, queued["id"])
    assert item["status"] == "finished", item

    [json_hit] = wait_for(lambda: receiver.to("/json"), message="the json webhook")
    assert json_hit.method == "POST"
    assert json_hit.headers["x-token"] == "tok-123456789"
    assert json_hit.headers["content-type"] == "application/json"
    assert json_hit.headers["user-agent"].startswith("appliance/")
    sent = event_of(json_hit, "payload")
    assert sent["event"] == "item_completed"
    assert sent["data"]["id"] == item["id"] and sent["data"]["status"] == "finished"
    assert sent["title"] == f"Downloaded: {item['title']}"

    [form_hit] = wait_for(lambda: receiver.to("/form"), message="the form webhook")
    assert form_hit.method == "PUT"
    assert form_hit.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert list(form_hit.form()) == ["event"]
    assert event_of(form_hit, "event")["data"]["id"] == item["id"]

    [chat_hit] = wait_for(lambda: receiver.to("/apprise"), message="the Apprise target")
    message = chat_hit.json()
    assert {"version", "title", "message", "type"} <= set(message)
    assert message["type"] == "success"
    assert message["title"] == f"Downloaded: {item['title']}"
    assert message["message"].startswith(f"Downloaded: {item['title']} (")

    def recorded() -> list[dict[str, Any]] | None:
        rows = [client.simulate_get(f"/api/notifications/{t['id']}").json
                for t in (as_json, as_form, chat)]
        return rows if all(r["last_status"] for r in rows) else None

    for row in wait_for(recorded, message="the delivery status of each target"):
        assert row["last_status"] == "ok" and row["last_error"] is None
        assert row["last_sent_at"] > item["created_at"]


def test_hanging_and_failing_targets_delay_nothing_and_retries_stop(
    receiver: Receiver, start_runtime: Callable[..., Runtime], origin: MediaOrigin
) -> None:
    # A send that can hang for the whole test: the hanging target stays pending until the
    # receiver lets it go, however long the download takes on this box.
    runtime = start_runtime(YTP_NOTIFY_TIMEOUT="300", YTP_NOTIFY_RETRIES=str(RETRIES),
                            YTP_NOTIFY_RETRY_DELAY="0.05", YTP_NOTIFY_BURST_WINDOW="0.5")
    client = TestClient(create_app(runtime))
    # Created first, so a sequential sender would serve them before the good one.
    hanging = target(client, "hangs", receiver.url("/hang"),
                     on=["item_added", "item_completed"])
    failing = target(client, "fails", receiver.url("/fail"), on=["item_completed"])
    refused = target(client, "refused", receiver.url("/bad"), on=["item_completed"])
    target(client, "good", receiver.url("/ok"), on=["item_completed"])
    store = runtime.notifications

    [queued] = post(client, "/api/history", {"url": origin.clip_url}).json
    wait_for(lambda: receiver.to("/hang"), message="the hanging target to be called")
    item = wait_done(client, queued["id"])
    assert item["status"] == "finished"
    # The hanging target is still on its first request, and yet the download finished ...
    assert store.get(hanging["id"])["last_status"] is None
    # ... and the good target has its event.
    [good] = wait_for(lambda: receiver.to("/ok"), message="the good target")
    assert event_of(good)["data"]["id"] == item["id"]
    assert store.get(hanging["id"])["last_status"] is None

    # 500 is transient: retried with backoff, then given up (1 + RETRIES attempts).
    failed = wait_for(lambda: (t := store.get(failing["id"]))["last_status"] and t,
                      message="the failing target to give up")
    assert failed["last_status"] == "failed"
    assert "HTTP 500" in failed["last_error"]
    assert len(receiver.to("/fail")) == 1 + RETRIES
    # 400 is the request's own fault: never retried.
    wait_for(lambda: store.get(refused["id"])["last_status"], message="the refused target")
    assert len(receiver.to("/bad")) == 1
    assert store.get(refused["id"])["last_status"] == "failed"

    receiver.released.set()  # let the hanging target answer; its retries now succeed
    wait_for(lambda: store.get(hanging["id"])["last_status"], message="the hanging target")


def test_playlist_burst_is_one_chat_summary_and_one_webhook_call_each(
    receiver: Receiver, client: TestClient, runtime: Runtime, origin: MediaOrigin
) -> None:
    target(client, "chat", receiver.url("/apprise", scheme="json"), on=["item_completed"])
    target(client, "hook", receiver.url("/hook"), on=["item_completed"])
    [queued] = post(client, "/api/history", {"url": origin.playlist_url}).json

    hooks = wait_for(lambda: len(h := receiver.to("/hook")) == 3 and h, timeout=120,
                     message="3 completion webhooks")
    items = [event_of(h)["data"] for h in hooks]
    assert {i["batch_id"] for i in items} == {queued["id"]}
    assert {i["status"] for i in items} == {"finished"}
    assert len({i["id"] for i in items}) == 3

    [summary] = wait_for(lambda: receiver.to("/apprise"), message="the chat summary")
    message = summary.json()
    batch_name = items[0]["batch_name"]
    assert message["title"] == f"Downloaded 3 items from {batch_name}"
    for item in items:
        assert item["title"] in message["message"]
    # The summary covers all three completions, so nothing else can follow it.
    assert len(receiver.to("/apprise")) == 1


# --- the API ------------------------------------------------------------------------------


def test_events_endpoint(client: TestClient) -> None:
    for path in ("/api/notifications/events", "/api/notifications/events/"):
        response = client.simulate_get(path)
        assert response.status_code == 200
        names = response.json["events"]
        assert {"item_added", "item_completed", "item_cancelled", "item_deleted",
                "item_error", "paused", "resumed", "log_error", "test"} <= set(names)
        assert names == list(EVENTS)


@pytest.mark.parametrize(("body", "text"), [
    ({"request": {"url": "http://127.0.0.1/x"}}, "name is required."),
    ({"name": "", "request": {"url": "http://127.0.0.1/x"}}, "name must be a non-empty"),
    ({"name": "a"}, "request is required and must be an object."),
    ({"name": "a", "request": {}}, "request.url is required."),
    ({"name": "a", "request": {"url": "http://127.0.0.1/x", "method": "GET"}},
     "request.method must be POST or PUT."),
    ({"name": "a", "request": {"url": "http://127.0.0.1/x", "type": "xml"}},
     "request.type must be json or form."),
    ({"name": "a", "request": {"url": "tgram://abc"}}, "not a valid Apprise URL: "),
    ({"name": "a", "request": {"url": "nosuchservice://abc"}}, "not a valid Apprise URL: "),
    ({"name": "a", "request": {"url": "127.0.0.1/hook"}}, "http(s):// webhook or an Apprise"),
    ({"name": "a", "request": {"url": "http:///nohost"}}, "must name a host"),
    ({"name": "a", "on": ["nope"], "request": {"url": "http://127.0.0.1/x"}},
     "Unknown event(s) in on: nope."),
    ({"name": "a", "on": "item_added", "request": {"url": "http://127.0.0.1/x"}},
     "on must be an array"),
    ({"name": "a", "presets": [1], "request": {"url": "http://127.0.0.1/x"}},
     "presets must be an array"),
    ({"name": "a", "enabled": "yes", "request": {"url": "http://127.0.0.1/x"}},
     "enabled must be true or false."),
    ({"name": "a", "request": {"url": "http://127.0.0.1/x", "headers": [{"key": "a b"}]}},
     "request.headers[0].key is not a valid header name"),
    ({"name": "a", "request": {"url": "http://127.0.0.1/x",
                               "headers": [{"key": "X", "value": "a\r\nInjected: 1"}]}},
     "request.headers[0].value must be on one line"),
    ({"name": "a", "request": {"url": "http://127.0.0.1/x", "data_key": ""}},
     "request.data_key must be a non-empty string."),
    ({"name": "a", "colour": "red", "request": {"url": "http://127.0.0.1/x"}},
     "Unknown field(s): colour."),
])
def test_create_bad_input(refusing: TestClient, body: dict[str, Any], text: str) -> None:
    response = post(refusing, "/api/notifications", body)
    assert response.status_code == 400, response.text
    assert text in response.json["error"]
    assert response.json["code"] == "INVALID_REQUEST"
    assert refusing.simulate_get("/api/notifications").json["pagination"]["total"] == 0


def test_crud_conflicts_not_found_and_config_updates(client: TestClient,
                                                    runtime: Runtime) -> None:
    seen: list[dict[str, Any]] = []
    runtime.bus.subscribe(lambda e: e.name == "config_update" and seen.append(e.data))
    first = target(client, "first", "http://127.0.0.1:9/a", enabled=False,
                   request={"method": "put", "type": "FORM"})
    assert first["request"] == {"type": "form", "method": "PUT", "url": "http://127.0.0.1:9/a",
                                "data_key": "data", "headers": []}
    assert first["on"] == [] and first["presets"] == [] and first["enabled"] is False
    second = target(client, "second", "http://127.0.0.1:9/b", enabled=False,
                    on=["item_error"], presets=["default"])

    duplicate = post(client, "/api/notifications",
                     {"name": "first", "request": {"url": "http://127.0.0.1:9/c"}})
    assert duplicate.status_code == 409 and duplicate.json["code"] == "CONFLICT"
    clash = send(client, "PATCH", f"/api/notifications/{second['id']}", {"name": "first"})
    assert clash.status_code == 409

    patched = send(client, "PATCH", f"/api/notifications/{second['id']}",
                   {"on": ["item_completed"], "request": {"data_key": "d"}}).json
    assert patched["on"] == ["item_completed"] and patched["presets"] == ["default"]
    assert patched["request"]["url"] == "http://127.0.0.1:9/b"
    assert patched["request"]["data_key"] == "d"
    replaced = send(client, "PUT", f"/api/notifications/{second['id']}",
                    {"name": "second", "request": {"url": "http://127.0.0.1:9/b2"}}).json
    assert replaced["on"] == [] and replaced["presets"] == [] and replaced["enabled"] is True
    assert replaced["request"]["data_key"] == "data"
    put_bad = send(client, "PUT", f"/api/notifications/{second['id']}", {"name": "second"})
    assert put_bad.status_code == 400

    for method in ("GET", "PATCH", "PUT", "DELETE"):
        for missing in ("999", "abc", "0", str(10**30)):
            response = send(client, method, f"/api/notifications/{missing}",
                            {"name": "x", "request": {"url": "http://127.0.0.1:9/x"}})
            assert response.status_code == 404, (method, missing)
            assert response.json["error"] == "Notification target not found."

    page = client.simulate_get("/api/notifications/", params={"per_page": 1, "page": 2})
    assert page.status_code == 200
    assert [t["name"] for t in page.json["items"]] == ["second"]
    assert page.json["pagination"] == {"page": 2, "per_page": 1, "total": 2, "total_pages": 2,
                                       "has_next": False, "has_prev": True}
    assert page.headers["Total-Count"] == "2"
    assert client.simulate_get("/api/notifications", params={"page": 0}).status_code == 400
    far = client.simulate_get("/api/notifications", params={"page": 10**21})
    assert far.status_code == 400 and far.json["error"].startswith("page must be <=")
    assert runtime.notifications.page(10**21, 1000) == ([], 2)  # no SQLite overflow either

    deleted = client.simulate_delete(f"/api/notifications/{first['id']}")
    assert deleted.status_code == 200 and deleted.json["name"] == "first"
    assert client.simulate_get(f"/api/notifications/{first['id']}").status_code == 404

    assert [(e["feature"], e["action"], e["data"]["name"]) for e in seen] == [
        ("notifications", "create", "first"), ("notifications", "create", "second"),
        ("notifications", "update", "second"), ("notifications", "update", "second"),
        ("notifications", "delete", "first"),
    ]


def test_secrets_are_masked_on_read_and_kept_when_sent_back(client: TestClient,
                                                           runtime: Runtime) -> None:
    secrets = ["pa55word", "s3cr3t-t0ken", "abcdef0123456789abcdef", "tok-987654321",
               "key-1234567", "AAbbCCddEEffGGhh", "abcdefTOKENxyz"]
    hook_url = ("http://user:pa55word@127.0.0.1:9/hook/abcdef0123456789abcdef"
                "?token=s3cr3t-t0ken&room=general")
    headers = [{"key": "Authorization", "value": "Bearer tok-987654321"},
               {"key": "X-Api-Key", "value": "key-1234567"},
               {"key": "Content-Type", "value": "application/json"}]
    seen: list[Any] = []
    runtime.bus.subscribe(lambda e: e.name == "config_update" and seen.append(e.data))
    hook = target(client, "hook", hook_url, enabled=False, request={"headers": headers})
    target(client, "telegram", "tgram://123456789:AAbbCCddEEffGGhh/12345", enabled=False)
    target(client, "discord", "discord://1234567/abcdefTOKENxyz", enabled=False)

    listed = client.simulate_get("/api/notifications")
    single = client.simulate_get(f"/api/notifications/{hook['id']}")
    for text in (listed.text, single.text, json.dumps(hook), json.dumps(seen)):
        for secret in secrets:
            assert secret not in text
    shown = single.json["request"]
    assert shown["url"] == "http://user:****@127.0.0.1:9/hook/****?token=****&room=general"
    assert shown["headers"] == [{"key": "Authorization", "value": "Bearer ****"},
                                {"key": "X-Api-Key", "value": "****"},
                                {"key": "Content-Type", "value": "application/json"}]
    by_name = {t["name"]: t for t in listed.json["items"]}
    assert by_name["telegram"]["request"]["url"].startswith("tgram://")
    assert by_name["discord"]["request"]["url"].startswith("discord://")

    # The masked request sent back (a client editing another field) keeps the secrets.
    back = send(client, "PUT", f"/api/notifications/{hook['id']}",
                {**single.json, "name": "renamed"})
    assert back.status_code == 200, back.text
    stored = runtime.notifications.get(hook["id"])
    assert stored["name"] == "renamed"
    assert stored["request"]["url"] == hook_url
    assert stored["request"]["headers"] == headers
    # A new value replaces the old one.
    changed = send(client, "PATCH", f"/api/notifications/{hook['id']}", {"request": {
        "headers": [{"key": "Authorization", "value": "Bearer new-secret-1"}]}})
    assert changed.json["request"]["headers"] == [{"key": "Authorization",
                                                   "value": "Bearer ****"}]
    assert runtime.notifications.get(hook["id"])["request"]["headers"] == [
        {"key": "Authorization", "value": "Bearer new-secret-1"}]


def test_test_endpoint_reports_each_target(receiver: Receiver, tmp_path: Path) -> None:
    rt = started(make_settings(tmp_path, YTP_NOTIFY_TIMEOUT="1", YTP_NOTIFY_RETRIES="3"))
    try:
        client = TestClient(create_app(rt))
        # on: a test goes to every enabled target whatever it subscribed to.
        target(client, "ok", receiver.url("/ok"), on=["item_error"])
        target(client, "fails", receiver.url("/fail"), on=["item_error"])
        target(client, "hangs", receiver.url("/hang"), on=["item_error"])
        target(client, "chat", receiver.url("/chat", scheme="json"), on=["item_error"])
        target(client, "off", receiver.url("/off"), enabled=False)
        response = client.simulate_post("/api/notifications/test")
        assert response.status_code == 200
        results = {r["name"]: r for r in response.json["results"]}
        assert set(results) == {"ok", "fails", "hangs", "chat"}
        assert results["ok"]["ok"] is True and results["ok"]["status"] == 200
        assert results["fails"] == {"id": results["fails"]["id"], "name": "fails", "ok": False,
                                    "status": 500, "error": "HTTP 500 Internal Server Error"}
        assert results["hangs"]["ok"] is False
        assert results["hangs"]["error"] == "No answer within 1 s."
        assert results["chat"]["ok"] is True
        assert event_of(receiver.to("/ok")[0])["event"] == "test"
        assert receiver.to("/chat")[0].json()["title"] == "Test notification"
        assert len(receiver.to("/fail")) == 1  # no retries for a test
        assert receiver.to("/off") == []
        listed = {t["name"]: t for t in client.simulate_get("/api/notifications").json["items"]}
        assert listed["fails"]["last_status"] == "failed"
        assert listed["ok"]["last_status"] == "ok"
        assert listed["off"]["last_status"] is None
    finally:
        receiver.released.set()
        rt.stop()


def test_apprise_yml_targets_are_loaded(receiver: Receiver, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "apprise.yml").write_text(
        "urls:\n"
        f"  - {receiver.url('/yml', scheme='json')}\n"
        f"  - {receiver.url('/yml-secret', scheme='json').replace('//', '//me:hunter22@')}\n"
        f"  - {receiver.url('/bad', scheme='json')}\n"
    )
    rt = started(make_settings(tmp_path))
    try:
        client = TestClient(create_app(rt))
        listed = client.simulate_get("/api/notifications")
        assert listed.json["items"] == []
        loaded = listed.json["apprise_config"]
        assert loaded["path"] == str(config / "apprise.yml")
        assert [(t["name"], t["enabled"], t["last_status"]) for t in loaded["targets"]] == [
            ("apprise.yml #1 (JSON)", True, None), ("apprise.yml #2 (JSON)", True, None),
            ("apprise.yml #3 (JSON)", True, None)]
        assert "hunter22" not in listed.text and "me:****@" in listed.text
        results = client.simulate_post("/api/notifications/test").json["results"]
        assert [r["ok"] for r in results] == [True, True, False]
        assert [r["id"] for r in results] == [None, None, None]
        assert receiver.to("/yml")[0].json()["title"] == "Test notification"
        assert receiver.to("/yml-secret")[0].headers["authorization"].startswith("Basic ")
        # and they get the engine's events (all of them) through the lanes
        rt.bus.publish("paused", {"paused": True})
        [paused] = wait_for(lambda: [h for h in receiver.to("/yml")
                                     if h.json()["title"] == "Downloads paused"],
                            message="the paused event on the apprise.yml target")
        assert paused.json()["type"] == "warning"
        status = client.simulate_get("/api/notifications").json["apprise_config"]["targets"]
        assert (status[0]["last_status"], status[0]["last_error"]) == ("ok", None)
        assert status[2]["last_status"] == "failed" and "error=400" in status[2]["last_error"]
    finally:
        rt.stop()


# --- delivery machinery -------------------------------------------------------------------


class _NoStore:
    def all(self) -> list[dict[str, Any]]:
        return []

    def release_thread(self) -> None:
        pass


def test_full_queue_drops_and_never_blocks(tmp_path: Path) -> None:
    bus = EventBus()
    notifier = Notifier(make_settings(tmp_path), _NoStore(), bus,  # type: ignore[arg-type]
                        _NoStore())  # type: ignore[arg-type]
    notifier._events.maxsize = 2  # a tiny queue, and no dispatcher draining it
    bus.subscribe(notifier._on_event)
    for _ in range(5):
        bus.publish("paused", {"paused": True})
    bus.publish("item_updated", {"id": "x", "percent": 5}, progress=True)  # ignored
    assert notifier.dropped == 3
    assert notifier._events.qsize() == 2


def test_stop_is_bounded_and_leaves_no_thread(receiver: Receiver, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    crashed: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    rt = started(make_settings(tmp_path, YTP_NOTIFY_TIMEOUT="1", YTP_NOTIFY_RETRIES="5"))
    client = TestClient(create_app(rt))
    target(client, "hangs", receiver.url("/hang"), on=["paused"])
    target(client, "chat", receiver.url("/chat", scheme="json"), on=["item_completed"])
    notifier = rt.notifier
    rt.bus.publish("paused", {"paused": True})
    # a burst the chat target is still holding when the service stops
    rt.bus.publish("item_completed", {"id": "a", "title": "A", "status": "finished"})
    wait_for(lambda: receiver.to("/hang"), message="the hanging send")
    lanes = list(notifier._lanes.values())
    assert len(lanes) == 2
    rt.stop()
    assert not any(lane.thread.is_alive() for lane in lanes)
    assert crashed == []  # each lane ended cleanly, chat and webhook
    assert notifier._thread is None
    # the held message was delivered on the way out, not lost
    assert receiver.to("/chat")[0].json()["title"] == "Downloaded: A"


def test_messages_for_people() -> None:
    item = {"id": "1", "title": "Big Buck", "file_size": 1_234_000_000, "status": "finished",
            "filename": "Big Buck.mp4", "url": "http://127.0.0.1/x",
            "info": {"duration": 185, "thumbnail": "https://127.0.0.1/t.jpg"}}
    done = describe("item_completed", item)
    assert done.title == "Downloaded: Big Buck"
    assert done.body.splitlines()[0] == "Downloaded: Big Buck (1.2 GB, 3 min)"
    assert done.type == "success" and done.attach == "https://127.0.0.1/t.jpg"
    failed = describe("item_error", {**item, "error": "HTTP 403", "info": {
        "thumbnail": "file:///etc/passwd"}})
    assert failed.title == "Download failed: Big Buck"
    assert "Big Buck — HTTP 403" in failed.body
    assert failed.type == "failure" and failed.attach is None

    def brief(event: str, n: int, **extra: Any) -> dict[str, Any]:
        data = {"title": f"t{n}", "file_size": 1000, **extra}
        return {"event": event, "title": f"t{n}", "size": 1000, "error": extra.get("error", ""),
                "thumbnail": None, "data": data}

    summary = summarize("finished", "My list", [brief("item_completed", n) for n in range(12)]
                        + [brief("item_error", 99, error="gone")])
    assert summary.title == "Downloaded 12 of 13 items from My list"
    assert summary.type == "warning"
    lines = summary.body.splitlines()
    assert lines[0] == "1 failed" and "✗ t99 — gone" in lines
    assert lines[-1] == "… and 3 more"


def test_dispatch_filters_by_event_preset_and_duplicates(tmp_path: Path) -> None:
    from appliance.notify.batches import BatchTracker
    from appliance.notify.notifier import Target

    tracker = BatchTracker()
    hook = Target("db:1", 1, "h", ("item_error", "log_error"), ("audio",), True,
                  {"url": "http://127.0.0.1/"})
    logs_only = Target("db:2", 2, "l", ("log_error",), (), True, {"url": "http://127.0.0.1/"})
    added, _ = tracker.observe(Event("item_added", {"id": "i", "preset": "audio",
                                                    "batch_id": "b"}))
    assert added is not None and not hook.wants(added)  # not subscribed
    error, closed = tracker.observe(Event("item_error", {"id": "i", "preset": "audio",
                                                         "batch_id": "b"}))
    assert error is not None and hook.wants(error) and closed == ["b"]
    other, _ = tracker.observe(Event("item_error", {"id": "j", "preset": "video"}))
    assert other is not None and not hook.wants(other)  # another preset
    duplicate, _ = tracker.observe(Event("log_error", {"id": "i", "message": "failed"}))
    assert duplicate is not None
    assert not hook.wants(duplicate)  # it gets item_error for the same failure
    assert logs_only.wants(duplicate)
