"""Notification targets that can never be sent: refused when saved, and when one is in the
store anyway (written before the checks, or around them), its deliveries fail one by one,
recorded and logged, while its lane goes on and delivers once the target is fixed.

The receiver is the real HTTP server of test_notify on 127.0.0.1.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings, started
from falcon.testing import TestClient
from support.server import wait_for
from support.webhooks import Receiver, event_of, post, send, target

from appliance.api.app import create_app
from appliance.notify.targets import scrub
from appliance.runtime import Runtime
from appliance.store import database


@pytest.fixture(name="receiver")
def _receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


LONG_LABEL = "http://" + "a" * 70 + ".example/"

# What the tester saved (200) and what then killed the lane, as the store may still hold it.
UNSENDABLE = {
    "euro header": {"url": "RECEIVER", "headers": [{"key": "X-Token", "value": "€"}]},
    "long label": {"url": LONG_LABEL},
    "empty label": {"url": "http://a..b/"},
    # Garbage no check expects (a method that is no string): a bug's kind of failure.
    "garbage": {"url": "RECEIVER", "method": 5},
}


def stored_request(fields: dict[str, Any], receiver: Receiver) -> dict[str, Any]:
    request = {"type": "json", "method": "POST", "data_key": "data", "headers": [], **fields}
    if request["url"] == "RECEIVER":
        request["url"] = receiver.url("/never")
    return request


@pytest.mark.parametrize(("request_", "text"), [
    ({"url": "http://127.0.0.1/x", "headers": [{"key": "X-Token", "value": "€"}]},
     "request.headers[0].value holds '€'"),
    ({"url": "http://127.0.0.1/x", "headers": [{"key": "X", "value": "a\x01b"}]},
     "request.headers[0].value must be on one line"),
    ({"url": LONG_LABEL}, "request.url has an invalid host"),
    ({"url": "http://a..b/"}, "request.url has an invalid host 'a..b'"),
])
def test_save_refuses_what_can_never_be_sent(client: TestClient, request_: dict[str, Any],
                                             text: str) -> None:
    response = post(client, "/api/notifications", {"name": "a", "request": request_})
    assert response.status_code == 400, response.text
    assert text in response.json["error"]
    assert client.simulate_get("/api/notifications").json["pagination"]["total"] == 0


def test_header_values_are_saved_as_http_reads_them(client: TestClient,
                                                    runtime: Runtime) -> None:
    saved = target(client, "spaced", "http://127.0.0.1:9/x", request={"headers": [
        {"key": "X-Key", "value": " lead "}, {"key": "X-Latin", "value": "café\tau lait"}]})
    assert runtime.notifications.get(saved["id"])["request"]["headers"] == [
        {"key": "X-Key", "value": "lead"}, {"key": "X-Latin", "value": "café\tau lait"}]


def _start(tmp_path: Path) -> Runtime:
    rt = started(make_settings(tmp_path, YTP_NOTIFY_TIMEOUT="5", YTP_NOTIFY_RETRIES="2",
                               YTP_NOTIFY_RETRY_DELAY="0.05"))
    return rt


def test_a_failing_delivery_leaves_the_lane_alive_and_a_fix_is_delivered(
        receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rt = _start(tmp_path)
    try:
        client = TestClient(create_app(rt))
        target(client, "good", receiver.url("/good"), on=["paused", "resumed"])
        bad = {name: rt.notifications.create({
            "name": name, "on": ["paused", "resumed"], "presets": [], "enabled": True,
            "request": stored_request(fields, receiver)}) for name, fields in UNSENDABLE.items()}
        with caplog.at_level(logging.WARNING, logger="appliance.notify"):
            assert client.simulate_post("/api/system/pause").status_code == 200

            def all_failed() -> dict[str, dict[str, Any]] | None:
                rows = {n: rt.notifications.get(t["id"]) for n, t in bad.items()}
                return rows if all(r["last_status"] for r in rows.values()) else None

            rows = wait_for(all_failed, message="each bad target's failure to be recorded")
            wait_for(lambda: receiver.to("/good"), message="the good target's event")
        assert {n: r["last_status"] for n, r in rows.items()} == dict.fromkeys(bad, "failed")
        assert "holds '€'" in rows["euro header"]["last_error"]
        assert "invalid host" in rows["long label"]["last_error"]
        assert "invalid host 'a..b'" in rows["empty label"]["last_error"]
        assert rows["garbage"]["last_error"].startswith("Internal error: ")
        assert receiver.to("/never") == []
        # Each failure is one warning naming its target; a traceback only for the bug.
        for name in bad:
            [record] = [r for r in caplog.records if repr(name) in r.getMessage()]
            assert record.levelno == logging.WARNING
            assert (record.exc_info is not None) == (name == "garbage"), record.getMessage()
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        lanes = {lane.name: lane for lane in rt.notifier._lanes.values()}
        assert all(lanes[name].thread.is_alive() for name in bad)

        # The owner fixes each target through the API: the next event reaches it.
        for n, (name, row) in enumerate(bad.items()):
            response = send(client, "PATCH", f"/api/notifications/{row['id']}", {"request": {
                "url": receiver.url(f"/fixed{n}"), "method": "POST",
                "headers": [{"key": "X-Token", "value": "Euro"}]}})
            assert response.status_code == 200, (name, response.text)
        assert client.simulate_post("/api/system/resume").status_code == 200
        for n, name in enumerate(bad):
            [hit] = wait_for(lambda n=n: receiver.to(f"/fixed{n}"),
                             message=f"the event for the fixed target {name!r}")
            assert event_of(hit)["event"] == "resumed"
            assert hit.headers["x-token"] == "Euro"
        wait_for(lambda: len(receiver.to("/good")) == 2, message="the good target's 2nd event")
        for row in bad.values():
            wait_for(lambda row=row: rt.notifications.get(row["id"])["last_status"] == "ok",
                     message="the fixed target's status")
    finally:
        rt.stop()


def test_test_endpoint_reports_the_real_error(receiver: Receiver, tmp_path: Path) -> None:
    rt = _start(tmp_path)
    try:
        client = TestClient(create_app(rt))
        for name, fields in UNSENDABLE.items():
            rt.notifications.create({"name": name, "on": [], "presets": [], "enabled": True,
                                     "request": stored_request(fields, receiver)})
        # A short header value that is also part of a word in the receiver's answer.
        target(client, "fails", receiver.url("/fail"),
               request={"headers": [{"key": "X-Api-Key", "value": "Serv"}]})
        response = client.simulate_post("/api/notifications/test")
        assert response.status_code == 200
        results = {r["name"]: r for r in response.json["results"]}
        for name in UNSENDABLE:
            assert results[name]["ok"] is False
            assert "No answer" not in results[name]["error"], results[name]
        assert results["euro header"]["error"].startswith(
            "Cannot send: request.headers[0].value holds '€'")
        assert results["long label"]["error"].startswith("Cannot send: request.url has an "
                                                         "invalid host 'aaaa")
        assert results["garbage"]["error"].startswith("Internal error: AttributeError: ")
        assert results["fails"]["error"] == "HTTP 500 Internal Server Error"
        assert rt.notifications.get(results["long label"]["id"])["last_status"] == "failed"
        assert receiver.to("/never") == []
    finally:
        rt.stop()


def test_scrub_masks_secrets_not_words() -> None:
    request = {"url": "http://h/", "headers": [{"key": "X-Key", "value": " lead"},
                                               {"key": "X-Other", "value": "Serv"}]}
    text = ("Invalid leading whitespace, reserved character(s), or return character(s) in "
            "header value: ' lead' (Serv; Server)")
    assert scrub(text, request) == (
        "Invalid leading whitespace, reserved character(s), or return character(s) in "
        "header value: '****' (****; Server)")
    # A long secret goes wherever it is, even glued to other text.
    secret = {"url": "http://h/", "headers": [{"key": "X-Key", "value": "s3cr3t-t0ken-abcdef"}]}
    assert scrub("got%20s3cr3t-t0ken-abcdefXY", secret) == "got%20****XY"


def test_a_database_that_cannot_be_written_is_said_once_not_at_each_delivery(
        receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """While the database cannot be written (a full disk; here an admin's sqlite3 shell holds
    its write lock), each delivery's status could not be stored: each was an ERROR with a
    traceback (the log grew on the full disk, websocket clients saw each). Said once; the
    deliveries go on; said again when a status is stored again."""
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 200)
    rt = _start(tmp_path)
    shell = sqlite3.connect(rt.settings.database_file, isolation_level=None)
    try:
        client = TestClient(create_app(rt))
        hook = target(client, "hook", receiver.url("/hook"), on=["log_info"])
        with caplog.at_level(logging.INFO, logger="appliance.notify"):
            shell.execute("BEGIN IMMEDIATE")
            for n in range(3):
                rt.bus.message("info", "News", f"news {n}")
            wait_for(lambda: len(receiver.to("/hook")) == 3, message="the three deliveries")
            said = wait_for(lambda: [r for r in caplog.records if "not recorded" in
                                     r.getMessage()], message="the status not recorded")
            shell.execute("ROLLBACK")
            sent = 3

            def outbox_written_again() -> bool:
                # A lane still waiting out the lock with an earlier status may hold the write
                # lock past the 200 ms a keep waits here: one more notice once each is through.
                nonlocal sent
                if [r for r in caplog.records if "kept across a restart again" in
                        r.getMessage()]:
                    return True
                if len(receiver.to("/hook")) == sent:
                    rt.bus.message("info", "News", f"news {sent}")
                    sent += 1
                return False

            # (said at INFO, so waited for while the capture takes INFO)
            wait_for(outbox_written_again, message="the outbox written again, said")
            wait_for(lambda: rt.notifications.get(hook["id"])["last_status"] == "ok",
                     message="a status recorded again")
            wait_for(lambda: [r for r in caplog.records if "recorded again" in r.getMessage()],
                     message="the status recorded again, said")
        said = [r for r in caplog.records if "not recorded" in r.getMessage()]
        assert len(said) == 1 and said[0].levelno == logging.WARNING
        assert said[0].exc_info is None
        assert "another program holds a lock on it" in said[0].getMessage()
        # the outbox too: its notices went unkept (and were sent), said once, then kept again
        unkept = [r for r in caplog.records if "not kept across a restart" in r.getMessage()]
        assert len(unkept) == 1 and unkept[0].exc_info is None
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # its row goes once it is delivered, a moment after its status is recorded
        wait_for(lambda: rt.notifier.outbox.store.waiting() == [],
                 message="the delivered notice's outbox row gone")
    finally:
        shell.close()
        rt.stop()
