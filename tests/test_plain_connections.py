"""The service's own requests that cannot connect (a task's feed, a webhook) say why in words,
naming the host: requests' text was a repr of its connection pool ("could not read …:
ConnectionError", "HTTPPool(host=…): Max retries exceeded … (Caused by NewConnectionError(…))")."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import falcon.testing
import pytest
from conftest import make_settings, started
from support.server import wait_for
from support.webhooks import target

from appliance.api.app import create_app
from appliance.runtime import Runtime

REPR = ("Caused by", "Pool(", "CheckedHTTP", "Max retries", "object at 0x")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("host", "said"), [
    ("127.0.0.1:{port}", "Connection refused by 127.0.0.1:{port}: nothing answers there (the "
                         "site is down, or the address or its port is wrong). Try again once it "
                         "is up."),
    ("nothing.invalid", "The name nothing.invalid could not be found (DNS): check the address "
                        "for a typo, and that this box reaches its name server."),
])
def test_a_task_whose_feed_cannot_be_reached_says_why(
        runtime: Runtime, client: falcon.testing.TestClient, host: str, said: str) -> None:
    port = closed_port()
    url = f"http://{host.format(port=port)}/feed.rss"
    task = client.simulate_post("/api/tasks", json={"name": "Gone", "url": url,
                                                    "timer": "0 3 * * *"}).json
    execution = runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
    assert execution["status"] == "failed"
    assert execution["error"] == f"could not read {url}: {said.format(port=port)}"


def test_a_webhook_that_refuses_says_why_without_its_secret(
        client: falcon.testing.TestClient) -> None:
    port = closed_port()
    hook = f"http://127.0.0.1:{port}/hook?token=abcdefgh1234"
    made = client.simulate_post("/api/notifications", json={
        "name": "hook", "on": [], "request": {"url": hook, "method": "POST", "type": "json"}})
    assert made.status_code == 200, made.text
    [result] = client.simulate_post("/api/notifications/test", json={}).json["results"]
    error = result["error"]
    assert error == (f"Connection refused by 127.0.0.1:"
                     f"{port}: nothing answers there (the site is down, or the address or its "
                     f"port is wrong). Try again once it is up. (POST http://127.0.0.1:{port}"
                     f"/hook?token=****)")
    assert not any(part in error for part in REPR)


def test_a_webhook_that_keeps_refusing_is_said_once_in_the_log_not_once_a_retry(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="appliance.notify")
    runtime = started(make_settings(tmp_path, YTP_NOTIFY_RETRIES="2",
                                    YTP_NOTIFY_RETRY_DELAY="0.05"))
    try:
        client = falcon.testing.TestClient(create_app(runtime))
        hook = target(client, "gone", f"http://127.0.0.1:{closed_port()}/hook", on=["paused"])
        assert client.simulate_post("/api/system/pause").status_code == 200
        row = wait_for(lambda: (t := runtime.notifications.get(hook["id"]))["last_status"]
                       and t, message="the delivery's outcome")
    finally:
        runtime.stop()
    assert row["last_status"] == "failed" and row["last_error"].endswith("(3 attempts)")
    said = [r for r in caplog.records if "'gone'" in r.getMessage()]
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in said] == [
        ("WARNING", "notification to 'gone' failed after 3 attempt(s)")]
