"""An item's URL secrets (a password before the host, a token in the query) stay out of what
the service says to others than the item's owner: the journal and the log file (handed to
someone to debug), ``/api/logs`` and its stream, and a chat target that follows the log.

The owner reads the URL back whole from the item itself (the contract's ``url``); a failed
download's log line names it, as before, with its secrets masked.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import pytest
from falcon.testing import TestClient
from support.feeds import FeedEntry
from support.origin import MediaOrigin
from support.server import wait_for
from support.webhooks import Receiver, event_of, post, target

from appliance import logs
from appliance.api.auth import OPEN_PATHS
from appliance.auth import show_token
from appliance.events import EventBus
from appliance.runtime import Runtime
from appliance.url_secrets import without_url_secrets

SECRETS = ("USECRET42", "TSECRET42")


def _secret_url(origin: MediaOrigin) -> str:
    base = urlsplit(origin.base_url)
    return urlunsplit(base._replace(netloc=f"me:USECRET42@{base.netloc}",
                                    path="/no-such-clip.mp4", query="token=TSECRET42&n=1"))


def test_a_failed_downloads_url_secrets_stay_out_of_the_log_and_the_chat(
        client: TestClient, runtime: Runtime, origin: MediaOrigin) -> None:
    """"download failed: item=… url=…" wrote the item's URL whole: its password and token
    went to the journal, the log file, /api/logs, and (as "Download failed: <url>: …") to a
    target that follows log_error without item_error; an item_error target got its token."""
    receiver = Receiver()
    try:
        target(client, "log", receiver.url("/log"), on=["log_error"])
        target(client, "item", receiver.url("/item"), on=["item_error"])
        url = _secret_url(origin)
        [queued] = post(client, "/api/history", {"url": url}).json
        [hit] = wait_for(lambda: receiver.to("/log"), timeout=90, message="the log_error")
        [item] = wait_for(lambda: receiver.to("/item"), message="the item_error")
    finally:
        receiver.close()
    path = logs.log_file_path(runtime.settings.config_path)
    written = wait_for(lambda: "download failed" in (text := path.read_text()) and text,
                       message="the failure's log line")
    listed = client.simulate_get("/api/logs", params={"limit": 100}).text
    for said in (hit.body.decode(), item.body.decode(), written, listed):
        assert not any(secret in said for secret in SECRETS), said
    assert f"url={origin.base_url.replace('://', '://me:********@')}/no-such-clip.mp4" \
        "?token=********&n=1" in written
    assert event_of(item)["data"]["url"].endswith("/no-such-clip.mp4?token=********&n=1")
    mine = client.simulate_get(f"/api/history/{queued['id']}").json
    assert mine["url"] == url, "its owner reads it back whole"


def test_the_journals_lines_and_the_bus_say_a_url_without_its_secrets(
        caplog: pytest.LogCaptureFixture) -> None:
    """What the stderr handler (the journal) and the bus forwarder say, tracebacks too."""
    bus = EventBus()
    seen: list[dict[str, str]] = []
    bus.subscribe(lambda event: seen.append(event.data))
    forwarder = logs.forward_to_bus(bus)
    journal = logging.StreamHandler(stream := _Lines())
    journal.setFormatter(logs.PrintableFormatter(logging.Formatter(logs.FORMAT)))
    test_log = logging.getLogger("appliance.test_secrets")
    test_log.addHandler(journal)
    try:
        try:
            raise OSError("cannot open https://a:USECRET42@h.example/x?sig=TSECRET42")
        except OSError:
            test_log.exception("fetch of %s", "https://h.example/y?api_key=TSECRET42&p=2")
    finally:
        test_log.removeHandler(journal)
        logs.stop_forwarding(forwarder)
    said = "".join(stream.lines)
    assert "fetch of https://h.example/y?api_key=********&p=2" in said
    assert "https://a:********@h.example/x?sig=********" in said  # the traceback's line
    assert not any(secret in said for secret in SECRETS), said
    assert [data["message"] for data in seen] == [
        "fetch of https://h.example/y?api_key=********&p=2"]


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(("text", "shown"), [
    ("see https://me:pw@h.example:8/p?q=1#f.", "see https://me:********@h.example:8/p?q=1#f."),
    ("https://h.example/a?token=abc&list=PL1&Signature=x%2By",
     "https://h.example/a?token=********&list=PL1&Signature=********"),
    ("(http://sk1live2abcdefgh345@api.h/v1)", "(http://********@api.h/v1)"),
    ("rtmp://u:p@h/live/x,", "rtmp://u:********@h/live/x,"),
    ("a:pw@b and https://h.example/x?v=dQw4w9WgXcQ", "a:pw@b and https://h.example/x?v=dQw4w9WgXcQ"),
    ("https://me@h.example/", "https://me@h.example/"),
    ("http://box:8081/api/download/a.mp4?ticket=t1",
     "http://box:8081/api/download/a.mp4?ticket=********"),
    ("x1https://u:p@h/", "x1https://u:********@h/"),
    ("https://u:p'w\"@h/x", "https://u:********@h/x"),
    ('{"url": "https://h/?token=abc"}', '{"url": "https://h/?token=********"}'),
    ("HTTPError('https://h/p?sig=abc')", "HTTPError('https://h/p?sig=********')"),
    ("", ""),
])
def test_a_urls_secrets_are_masked_in_any_text(text: str, shown: str) -> None:
    assert without_url_secrets(text) == shown


def test_a_long_run_of_a_schemes_signs_is_read_once() -> None:
    """Tried at each sign of a run ("a.a.a…"), the pattern scanned the rest of the run each
    time: a record of a megabyte took hours, and every thread that logged waited behind it.
    (Linear, it takes 0.05 s here; the deadline is a hang's, not a measure.)"""
    script = ("from appliance.url_secrets import without_url_secrets as w; "
              "print(len(w('a.' * 500_000 + ' https://u:p@h/') + w('a-' * 500_000 + '://')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == str(1_000_000 + len(" https://u:********@h/") + 1_000_003), \
        done.stderr


def test_what_answers_without_credentials_says_no_secret(
        app_with: Callable[..., tuple[Runtime, TestClient]]) -> None:
    """With auth on, the paths open to a stranger (health checks, login status, the API
    docs) name neither the password, the token, a preset's cookies nor an item's URL."""
    runtime, client = app_with(YTP_AUTH_USERNAME="me", YTP_AUTH_PASSWORD="PSECRET42pw",
                               YTP_WARM_WORKERS="0")
    token = show_token(runtime.settings.config_path)
    owner = {"Authorization": f"Token {token}"}
    made = client.simulate_post("/api/presets", headers=owner, json={
        "name": "in", "cookies": "# Netscape HTTP Cookie File\n.h.example\tTRUE\t/\tFALSE\t0"
                                 "\tsession\tCSECRET42\n"})
    assert made.status_code in (200, 201), made.text
    client.simulate_post("/api/history", headers=owner, json={
        "url": "https://me:USECRET42@h.example/v?token=TSECRET42", "preset": "in",
        "auto_start": False})
    secrets = ("PSECRET42pw", token, "CSECRET42", *SECRETS)
    assert "USECRET42" in client.simulate_get("/api/history", headers=owner).text
    for path in sorted(OPEN_PATHS):
        answer = client.simulate_get(path.replace("/*", "/swagger-ui.css"))
        assert answer.status_code < 500, (path, answer.status_code)
        said = answer.text + str(answer.headers)
        assert not any(secret in said for secret in secrets), (path, said[:500])
    refused = client.simulate_get("/api/system/configuration")
    assert refused.status_code == 401, refused.text


def test_a_tasks_feed_passkey_stays_out_of_its_dispatch_notice(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin) -> None:
    """A private feed's URL (?passkey=…, a tracker's, a podcast's) went whole to every target
    that follows task_dispatched: in a webhook's JSON and in the chat message's link. Only
    an item's events were masked."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    receiver = Receiver()
    try:
        target(client, "hook", receiver.url("/hook"), on=["task_dispatched"])
        target(client, "chat", receiver.url("/chat", scheme="json"), on=["task_dispatched"])
        origin.feeds.set("private", [FeedEntry("p", origin.clip_url, "p")])
        task = post(client, "/api/tasks", {
            "name": "private", "url": f"{origin.base_url}/feeds/private.rss?passkey=KSECRET42",
            "auto_start": False}).json
        assert client.simulate_post(f"/api/tasks/{task['id']}/execute").status_code == 202
        [hook] = wait_for(lambda: receiver.to("/hook"), timeout=60, message="the webhook")
        [chat] = wait_for(lambda: receiver.to("/chat"), message="the chat message")
    finally:
        receiver.close()
    for hit in (hook, chat):
        assert "KSECRET42" not in hit.body.decode(), hit.body
    assert event_of(hook)["data"]["url"].endswith("/feeds/private.rss?passkey=********")
    assert runtime.tasks.get(task["id"])["url"].endswith("?passkey=KSECRET42"), \
        "the task keeps it"
