"""Notifications that survive a restart: a notice waiting for a target (behind a failing send,
in a retry's wait) is kept in the outbox and sent after a ``kill -9`` or a stop, once more,
with the same delivery id; a deleted or disabled target keeps nothing; rows the service did
not write (bad JSON, an unknown target, wrong types) are dropped and said at start-up.

The end-to-end tests run the real service (gunicorn, yt-dlp against the local origin); the
others a runtime in this process. Receivers are HTTP servers here on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import apprise
import pytest
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import Server, wait_for
from support.webhooks import Hit, Receiver, event_of, send, target

from appliance.api.app import create_app
from appliance.notify.outbox import LANE_SIZE, TOTAL_SIZE
from appliance.runtime import Runtime
from appliance.store.outbox import file_target_key

HOOK = "/hook"


@pytest.fixture(name="receiver")
def _receiver(start_runtime: Callable[..., Runtime]) -> Iterator[Receiver]:
    # Made after start_runtime, so closed before its runtimes stop: a send still hanging on
    # it is answered then, and no stop waits out its drain and grace (8 s) for it.
    r = Receiver()
    yield r
    r.close()


def _delivery(hit: Hit) -> str:
    return hit.headers["x-appliance-delivery"]


def _waiting(server: Server, target_id: int) -> int:
    return int(server.get(f"/api/notifications/{target_id}").json()["waiting"])


@pytest.mark.parametrize("end", ["kill -9", "stop"])
def test_a_notice_failing_at_the_end_is_sent_once_more_after_the_restart(
        end: str, receiver: Receiver, origin: MediaOrigin, tmp_path: Path) -> None:
    receiver.answers[HOOK] = 503
    # Retries wait 1, 2, 4 … s: the service ends while the notice waits for one.
    env = {"YTP_NOTIFY_RETRIES": "8", "YTP_NOTIFY_RETRY_DELAY": "1", "YTP_NOTIFY_TIMEOUT": "5"}
    server = Server(tmp_path / "svc", env=env).start()
    restarted: Server | None = None
    try:
        made = server.post("/api/notifications", {
            "name": "hook", "on": ["item_completed"], "request": {"url": receiver.url(HOOK)}})
        assert made.status_code == 200, made.text
        hook = made.json()
        [queued] = server.post("/api/history", {"url": origin.clip_url}).json()
        server.wait_status(queued["id"], {"finished"})
        wait_for(lambda: receiver.to(HOOK), message="the first try, answered 503")
        assert _waiting(server, hook["id"]) == 1
        if end == "kill -9":
            server.kill_hard()
        else:
            server.stop()
        failed = receiver.to(HOOK)
        assert {h.status for h in failed} == {503}
        receiver.answers[HOOK] = 200
        restarted = Server(server.root, env=env, port=server.port).start()
        wait_for(lambda: _waiting(restarted, hook["id"]) == 0,
                 timeout=60, message="the kept notice delivered")
        hits = receiver.to(HOOK)
        assert [h.status for h in hits[len(failed):]] == [200]  # once more, and only once
        # one delivery: every try, before and after the restart, with the same id
        assert {_delivery(h) for h in hits} == {_delivery(hits[0])}
        sent = event_of(hits[-1])
        assert sent["id"] == _delivery(hits[0])
        assert (sent["event"], sent["data"]["id"]) == ("item_completed", queued["id"])
        assert restarted.get(f"/api/notifications/{hook['id']}").json()["last_status"] == "ok"
    finally:
        for s in (restarted, server):
            if s is not None and s.proc is not None:
                s.stop()


@pytest.fixture(name="service")
def _service(start_runtime: Callable[..., Runtime]) -> Runtime:
    # A retry waits long enough for the test to look at what waits.
    return start_runtime(YTP_NOTIFY_TIMEOUT="5", YTP_NOTIFY_RETRIES="3",
                         YTP_NOTIFY_RETRY_DELAY="60")


def _rows(runtime: Runtime) -> list[Any]:
    return runtime.notifier.outbox.store.waiting()


@pytest.mark.parametrize("change", ["delete", "disable"])
def test_a_deleted_or_disabled_target_keeps_nothing_waiting(
        change: str, receiver: Receiver, service: Runtime) -> None:
    client = TestClient(create_app(service))
    receiver.answers[HOOK] = 503
    gone = target(client, "gone", receiver.url(HOOK), on=["log_info"])
    stays = target(client, "stays", receiver.url("/stays"), on=["log_info"])
    receiver.answers["/stays"] = 503
    for n in range(3):
        service.bus.message("info", "note", f"note {n}")
    wait_for(lambda: len(_rows(service)) == 6, message="three notices for each target")
    wait_for(lambda: receiver.to(HOOK), message="the first try of the first notice")
    listed = {t["name"]: t["waiting"] for t in client.simulate_get(
        "/api/notifications").json["items"]}
    assert listed == {"gone": 3, "stays": 3}
    if change == "delete":
        answer = client.simulate_delete(f"/api/notifications/{gone['id']}")
    else:
        answer = send(client, "PATCH", f"/api/notifications/{gone['id']}", {"enabled": False})
    assert answer.status_code == 200, answer.text
    assert answer.json["waiting"] == 0
    assert {r.target for r in _rows(service)} == {f"db:{stays['id']}"}
    assert len(_rows(service)) == 3


def _insert(database: Path, rows: list[tuple[Any, ...]]) -> None:
    with sqlite3.connect(database) as db:
        db.executemany("INSERT INTO notification_outbox (target, delivery, notice, attempts, "
                       "next_at) VALUES (?, ?, ?, ?, ?)", rows)


def _notice(**changes: Any) -> str:
    fields = {"event": "log_info", "data": {"message": "kept"}, "at": 1.7e9, "item": {},
              "item_id": "", "preset": "", "batch_id": "", "batch_name": "",
              "batch_open": False, **changes}
    return json.dumps(fields)


def test_rows_the_service_did_not_write_are_dropped_and_said_never_a_failed_start(
        receiver: Receiver, start_runtime: Callable[..., Runtime],
        caplog: pytest.LogCaptureFixture) -> None:
    first = start_runtime()
    client = TestClient(create_app(first))
    hook = target(client, "hook", receiver.url(HOOK), on=["log_info"])
    database = first.settings.database_file
    first.stop()
    key = f"db:{hook['id']}"
    _insert(database, [
        (key, "d-bad-json", "{not json", 0, None),
        (key, "d-list", "[1, 2]", 0, None),
        (key, "d-unknown-event", _notice(event="rm -rf /"), 0, None),
        (key, "d-item-text", _notice(item="x"), 0, None),
        (key, "d-at-text", _notice(at="soon"), 0, None),
        (key, "d-at-never", _notice(at=1e30), 0, None),
        (key, "d-attempts-text", _notice(), "many", None),
        (key, "d-next-at-text", _notice(), 0, "later"),
        ("db:999", "d-gone", _notice(), 0, None),
        (b"\xff\x00", "d-blob", _notice(), 0, None),
        (key, "d-good", _notice(data={"message": "the good one"}), 1, 0.0),
    ])
    with caplog.at_level(logging.INFO, logger="appliance.notify"):
        second = start_runtime()
        [hit] = wait_for(lambda: receiver.to(HOOK), message="the readable row sent")
    assert _delivery(hit) == "d-good"
    assert event_of(hit)["data"] == {"message": "the good one"}
    wait_for(lambda: not _rows(second), message="every row gone")
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    [unreadable] = [m for m in said if "could not be read" in m]
    assert unreadable.startswith("8 notification(s) waiting in the outbox could not be read "
                                 "and were dropped: row ")
    assert "notification(s) waiting for 'db:999' were dropped: that target is gone or " \
        "disabled" in "\n".join(said)
    assert sum("that target is gone" in m for m in said) == 2
    assert len(receiver.to(HOOK)) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback


def test_an_outbox_filled_behind_the_service_is_read_back_bounded(
        receiver: Receiver, start_runtime: Callable[..., Runtime],
        caplog: pytest.LogCaptureFixture) -> None:
    """More rows than every queue keeps (written by another program): only the newest are
    read into memory, the rest dropped and said; one target keeps LANE_SIZE in its queue."""
    first = start_runtime()
    client = TestClient(create_app(first))
    hook = target(client, "hangs", receiver.url("/hang"), on=["log_info"])
    database = first.settings.database_file
    first.stop()
    over = 5
    _insert(database, [(f"db:{hook['id']}", f"d-{n}", _notice(data={"message": f"m{n}"}), 0,
                        None) for n in range(TOTAL_SIZE + over)])
    with caplog.at_level(logging.WARNING, logger="appliance.notify"):
        second = start_runtime()
        wait_for(lambda: receiver.to("/hang"), message="the first kept notice, hanging")
        said = wait_for(lambda: [r.getMessage() for r in caplog.records
                                 if "dropped" in r.getMessage()][1:] and caplog.records,
                        message="both warnings")
    messages = [r.getMessage() for r in said if "dropped" in r.getMessage()]
    assert messages[0] == (f"{over} notification(s) waiting in the outbox were dropped, the "
                           f"oldest: more than {TOTAL_SIZE} waited")
    # the oldest kept went into flight at once; the newest LANE_SIZE wait behind it
    assert messages[1].endswith(f"the oldest {TOTAL_SIZE - LANE_SIZE - 1} were dropped")
    [in_flight] = receiver.to("/hang")
    assert _delivery(in_flight) == f"d-{over}"
    newest = range(TOTAL_SIZE + over - LANE_SIZE, TOTAL_SIZE + over)
    assert [r.delivery for r in _rows(second)] == [f"d-{over}", *(f"d-{n}" for n in newest)]


def test_a_chat_summary_failing_at_a_stop_is_merged_again_after_it(
        receiver: Receiver, start_runtime: Callable[..., Runtime]) -> None:
    # (the wait for the retry after the restart is what was left of it: a few seconds)
    settings = {"YTP_NOTIFY_BURST_WINDOW": "0.3", "YTP_NOTIFY_RETRY_DELAY": "3"}
    receiver.answers["/chat"] = 503
    first = start_runtime(**settings)
    client = TestClient(create_app(first))
    chat = target(client, "chat", receiver.url("/chat", scheme="json"), on=["item_completed"])
    for n in (1, 2):
        first.bus.publish("item_added", {"id": f"e{n}", "title": f"Entry {n}", "batch_id": "P",
                                         "batch_name": "My list"})
    for n in (1, 2):
        first.bus.publish("item_completed", {"id": f"e{n}", "status": "finished"})
    wait_for(lambda: receiver.to("/chat"), message="the summary's first try, answered 503")
    assert client.simulate_get(f"/api/notifications/{chat['id']}").json["waiting"] == 2
    first.stop()
    receiver.answers["/chat"] = 200
    second = start_runtime(**settings)
    wait_for(lambda: [h for h in receiver.to("/chat") if h.status == 200],
             message="the summary sent after the restart")
    wait_for(lambda: not _rows(second), message="its rows gone")
    hits = receiver.to("/chat")
    assert {h.json()["title"] for h in hits} == {"Downloaded 2 items from My list"}
    assert [h.status for h in hits if h.status != 503] == [200]


def test_an_apprise_yml_target_keeps_its_notices_when_lines_move_above_it(
        receiver: Receiver, start_runtime: Callable[..., Runtime], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """apprise.yml's targets are known by their URL, not their place: a notice kept for one
    goes to it after a restart that finds a new line above it, not to the URL now first; the
    same URL twice is one target."""
    retries = {"YTP_NOTIFY_TIMEOUT": "5", "YTP_NOTIFY_RETRIES": "8",
               "YTP_NOTIFY_RETRY_DELAY": "1"}
    receiver.answers["/kept"] = 503
    (tmp_path / "config").mkdir(exist_ok=True)
    yml = tmp_path / "config" / "apprise.yml"
    kept, new = receiver.url("/kept", scheme="json"), receiver.url("/new", scheme="json")
    yml.write_text(f"urls:\n  - {kept}\n")
    first = start_runtime(**retries)
    first.bus.message("info", "note", "kept for the first URL")
    wait_for(lambda: receiver.to("/kept"), message="the first try, refused")
    database = first.settings.database_file
    first.stop()
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT target FROM notification_outbox").fetchall() == [
            (file_target_key(apprise.Apprise.instantiate(kept).url()),)]  # as Apprise says it
    yml.write_text(f"urls:\n  - {new}\n  - {kept}\n  - {kept}\n")
    receiver.answers["/kept"] = 200
    with caplog.at_level(logging.WARNING, logger="appliance.notify"):
        second = start_runtime(**retries)
        delivered = wait_for(lambda: [h for h in receiver.to("/kept") if h.status == 200],
                             message="the kept notice, to its own URL")
    assert [h.json()["message"] for h in delivered] == ["kept for the first URL"]
    assert not [h for h in receiver.to("/new") if b"kept for the first URL" in h.body]
    listed = TestClient(create_app(second)).simulate_get("/api/notifications").json
    assert [t["name"] for t in listed["apprise_config"]["targets"]] == [
        "apprise.yml #1 (JSON)", "apprise.yml #2 (JSON)"]
    assert any("#3: the same URL as apprise.yml #2 (JSON); sent to once" in r.getMessage()
               for r in caplog.records)
    wait_for(lambda: not _rows(second), message="the row gone once delivered")
