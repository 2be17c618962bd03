"""Webhook deliveries that fail on the way: a connection refused or dropped is worth a retry,
and what the failure says (``last_error``, the test endpoint's answer, the log) never holds a
secret of the target's URL, in whatever encoding the sender put it on the wire.

Every receiver is a real socket on 127.0.0.1 in this process.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import make_settings, started
from falcon.testing import TestClient
from support.server import wait_for
from support.webhooks import Receiver, event_of, target

from appliance.api.app import create_app
from appliance.notify.senders import USER_AGENT, Outcome, send_webhook
from appliance.runtime import Runtime


@pytest.fixture(name="receiver")
def _receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(name="refused_port")
def _refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound but never listens: a connection there is refused,
    and no other program can take the port while the test runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(name="service")
def _service(tmp_path: Path) -> Iterator[Runtime]:
    rt = started(make_settings(tmp_path, YTP_NOTIFY_TIMEOUT="5", YTP_NOTIFY_RETRIES="2",
                               YTP_NOTIFY_RETRY_DELAY="0.05"))
    yield rt
    rt.stop()


def test_a_refused_connection_is_a_transient_connection_failure(refused_port: int) -> None:
    request = {"url": f"http://127.0.0.1:{refused_port}/hook", "type": "json",
               "method": "POST", "data_key": "data", "headers": []}
    outcome = send_webhook(request, {"event": "test"}, 5)
    assert outcome.ok is False and outcome.status is None
    assert outcome.transient is True
    assert outcome.bug is None
    assert outcome.error.startswith(f"Connection refused by 127.0.0.1:{refused_port}: "), \
        outcome.error


def test_a_dropped_connection_is_retried_and_the_event_delivered(
        receiver: Receiver, service: Runtime) -> None:
    client = TestClient(create_app(service))
    hook = target(client, "drops once", receiver.url("/drop"), on=["paused"])
    assert client.simulate_post("/api/system/pause").status_code == 200
    row = wait_for(lambda: (t := service.notifications.get(hook["id"]))["last_status"] and t,
                   message="the delivery's outcome")
    assert (row["last_status"], row["last_error"]) == ("ok", None)
    first, second = receiver.to("/drop")
    assert event_of(first)["event"] == event_of(second)["event"] == "paused"


# A secret as the URL writes it, and the forms the sender's error text may carry it in.
SECRETS = {
    "query token, percent-encoded": ("token=abc%2Fdef123456", ["abc%2Fdef123456",
                                                                "abc/def123456"]),
    "query token, quoted on the wire": ("sig=pipe|12345678", ["pipe%7C12345678",
                                                              "pipe|12345678"]),
    "query token with a plus": ("key=plus+12345678", ["plus+12345678", "plus 12345678"]),
    "token-like value, not ASCII": ("room=caféTokenValue12345", ["caf%C3%A9TokenValue12345",
                                                                  "caféTokenValue12345"]),
}


@pytest.mark.parametrize("case", SECRETS)
def test_a_failure_never_shows_a_secret_of_the_url(
        case: str, refused_port: int, service: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    query, forms = SECRETS[case]
    client = TestClient(create_app(service))
    hook = target(client, "refused", f"http://127.0.0.1:{refused_port}/hook?{query}")
    [result] = client.simulate_post("/api/notifications/test").json["results"]
    assert result["ok"] is False
    assert result["error"].startswith("Connection refused by 127.0.0.1:"), result["error"]
    assert "/hook?" in result["error"] and "****" in result["error"]  # masked where it was
    shown = client.simulate_get(f"/api/notifications/{hook['id']}")
    for form in forms:
        assert form not in result["error"]
        assert form not in shown.text
        assert form not in caplog.text


def _hook(url: str, **request: Any) -> dict[str, Any]:
    return {"url": url, "type": "json", "method": "POST", "data_key": "data", "headers": [],
            **request}


def test_each_answer_and_whether_it_is_worth_a_retry(receiver: Receiver) -> None:
    def outcome(path: str) -> Outcome:
        return send_webhook(_hook(receiver.url(path)), {"event": "test"}, 5)

    assert outcome("/status/204") == Outcome(True, 204)
    assert outcome("/status/404") == Outcome(False, 404, "HTTP 404 Not Found")
    assert outcome("/status/500") == Outcome(False, 500, "HTTP 500 Internal Server Error",
                                             transient=True)
    # A redirect is not followed (it could lead anywhere, with the target's headers).
    assert outcome("/status/302?Location=/elsewhere") == Outcome(
        False, 302, "HTTP 302 Found (redirected to /elsewhere; use that URL)")
    assert outcome("/status/301") == Outcome(
        False, 301, "HTTP 301 Moved Permanently (redirected to ?; use that URL)")
    assert receiver.to("/elsewhere") == []
    # 429 is worth a retry, after the wait it asks for (in seconds; a date is not read).
    assert outcome("/status/429?Retry-After=7") == Outcome(
        False, 429, "HTTP 429 Too Many Requests", transient=True, retry_after=7.0)
    assert outcome("/status/429").retry_after is None
    date = quote("Wed, 21 Oct 2015 07:28:00 GMT")
    assert outcome(f"/status/429?Retry-After={date}").retry_after is None
    assert outcome("/status/503?Retry-After=7") == Outcome(
        False, 503, "HTTP 503 Service Unavailable", transient=True)


def test_what_the_webhook_sends(receiver: Receiver) -> None:
    envelope = {"event": "paused", "data": {"paused": True}}
    typed = [{"key": "content-type", "value": "application/vnd.hook+json"},
             {"key": "User-Agent", "value": "mine"}]
    assert send_webhook(_hook(receiver.url("/typed"), headers=typed, data_key=""),
                        envelope, 5).ok
    [hit] = receiver.to("/typed")
    assert hit.headers["content-type"] == "application/vnd.hook+json"
    assert hit.headers["user-agent"] == "mine"
    assert hit.json() == {"data": envelope}
    assert send_webhook(_hook(receiver.url("/form"), type="form", method="PUT",
                              data_key="event"), envelope, 5).ok
    [form] = receiver.to("/form")
    assert form.method == "PUT" and form.headers["user-agent"] == USER_AGENT
    assert event_of(form, "event") == envelope


def test_a_wait_asked_for_by_429_is_honoured_and_a_stop_ends_it(
        receiver: Receiver, service: Runtime) -> None:
    client = TestClient(create_app(service))
    target(client, "busy", receiver.url("/status/429?Retry-After=1"), on=["paused"])
    target(client, "very busy", receiver.url("/status/429?Retry-After=100000"),
           on=["paused"])
    assert client.simulate_post("/api/system/pause").status_code == 200
    hits = wait_for(lambda: len(h := receiver.to("/status/429?Retry-After=1")) == 3 and h,
                    message="the first send and its 2 retries")
    # retry_delay is 0.05 s: only the answer's Retry-After makes the lane wait a second.
    assert [b.at - a.at >= 1.0 for a, b in itertools.pairwise(hits)] == [True, True]
    # A wait (here of more than a day) ends at once when the service stops: no more tries.
    assert len(receiver.to("/status/429?Retry-After=100000")) == 1
    lanes = list(service.notifier._lanes.values())
    service.notifier.stop()
    # Every lane ended, the one waiting out a day too (a stop leaves a lane it cannot end,
    # after its drain and grace, still waiting).
    wait_for(lambda: not any(lane.thread.is_alive() for lane in lanes),
             message="every lane to end with the stop")
    assert len(receiver.to("/status/429?Retry-After=100000")) == 1


def test_an_endless_answer_is_not_read(receiver: Receiver) -> None:
    outcomes: list[Outcome] = []
    sending = threading.Thread(target=lambda: outcomes.append(send_webhook(
        _hook(receiver.url("/endless")), {"event": "test"}, 5)), daemon=True)
    sending.start()
    sending.join(10)  # reading that body would take forever, and all the memory
    assert outcomes == [Outcome(True, 200)]
