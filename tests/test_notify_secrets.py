"""A notification target's secrets stay with it: whoever can edit a target (any API client,
anyone on the LAN while auth is off) reads them masked, and cannot have them sent to a host of
their own by changing the URL and keeping, or sending back masked, what is stored.

The receivers are real HTTP servers on 127.0.0.1 in this process; "another host" is another
port of it (a different destination for the sender all the same).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for
from support.webhooks import Receiver, event_of, post, send, target

from appliance.engine.credentials import masked_cli, shared_item
from appliance.notify.targets import scrub
from appliance.runtime import Runtime

SECRET_HEADERS = [{"key": "Authorization", "value": "Bearer tok-secret-1"},
                  {"key": "X-Api-Key", "value": "key-1234567"},
                  {"key": "Content-Type", "value": "application/json"}]


@pytest.fixture(name="receivers")
def _receivers() -> Iterator[tuple[Receiver, Receiver]]:
    owner, other = Receiver(), Receiver()
    yield owner, other
    owner.close()
    other.close()


def _patch(client: TestClient, hook: dict[str, Any], request: dict[str, Any]) -> Any:
    return send(client, "PATCH", f"/api/notifications/{hook['id']}", {"request": request})


def test_stored_secret_headers_never_follow_the_url_to_another_host(
        receivers: tuple[Receiver, Receiver], client: TestClient, runtime: Runtime) -> None:
    owner, other = receivers
    hook = target(client, "hook", owner.url("/hook"), request={"headers": SECRET_HEADERS})
    shown = client.simulate_get(f"/api/notifications/{hook['id']}").json["request"]

    # Another host, keeping the stored headers (a PATCH without headers) ...
    kept = _patch(client, hook, {"url": other.url("/steal")})
    assert kept.status_code == 400, kept.text
    assert kept.json["error"].startswith("request.headers[0] (Authorization): its stored value")
    # ... or sending back the masked values GET shows: refused, naming the first secret one.
    masked = _patch(client, hook, {"url": other.url("/steal"), "headers": shown["headers"]})
    assert masked.status_code == 400, masked.text
    assert "request.headers[0] (Authorization)" in masked.json["error"]
    only_key = _patch(client, hook, {"url": other.url("/steal"),
                                     "headers": shown["headers"][1:]})
    assert "request.headers[0] (X-Api-Key)" in only_key.json["error"]
    replaced = send(client, "PUT", f"/api/notifications/{hook['id']}",
                    {**client.simulate_get(f"/api/notifications/{hook['id']}").json,
                     "request": {**shown, "url": other.url("/steal")}})
    assert replaced.status_code == 400, replaced.text
    assert runtime.notifications.get(hook["id"])["request"]["url"] == owner.url("/hook")

    # The same host (another path) keeps them, masked or left out.
    moved = _patch(client, hook, {"url": owner.url("/moved"), "headers": shown["headers"]})
    assert moved.status_code == 200, moved.text
    assert _patch(client, hook, {"url": owner.url("/again")}).status_code == 200
    assert runtime.notifications.get(hook["id"])["request"]["headers"] == SECRET_HEADERS

    assert client.simulate_post("/api/notifications/test").json["results"][0]["ok"] is True
    assert other.hits == []
    [hit] = owner.to("/again")
    assert hit.headers["authorization"] == "Bearer tok-secret-1"
    assert hit.headers["x-api-key"] == "key-1234567"

    # Whoever knows the values may send them anywhere.
    given = _patch(client, hook, {"url": other.url("/new"), "headers": SECRET_HEADERS[:2]})
    assert given.status_code == 200, given.text
    assert client.simulate_post("/api/notifications/test").json["results"][0]["ok"] is True
    assert other.to("/new")[0].headers["x-api-key"] == "key-1234567"


def test_plain_headers_follow_the_url_anywhere(receivers: tuple[Receiver, Receiver],
                                              client: TestClient, runtime: Runtime) -> None:
    owner, other = receivers
    plain = [{"key": "Content-Type", "value": "application/json"},
             {"key": "User-Agent", "value": "my-hook"}]
    hook = target(client, "hook", owner.url("/hook"), request={"headers": plain})
    assert _patch(client, hook, {"url": other.url("/new")}).status_code == 200
    assert runtime.notifications.get(hook["id"])["request"]["headers"] == plain


def test_a_short_secret_is_masked_where_it_stands_whole() -> None:
    # Where a secret begins or ends with a sign, the sign is its edge: it may touch a word.
    request = {"url": "http://h/", "headers": [{"key": "X-Key", "value": ".sec-ret"},
                                               {"key": "X-B64", "value": "c2Vj="}]}
    assert scrub("a.sec-ret c2Vj=x c2Vjx a.sec-retx", request) == "a**** ****x c2Vjx a.sec-retx"


# --- an item's secrets ------------------------------------------------------------------------

ITEM_SECRETS = ("VSECRET42", "TSECRET42", "USECRET42")


def test_an_items_secrets_never_leave_the_box_in_a_notification(
        receivers: tuple[Receiver, Receiver], client: TestClient, runtime: Runtime,
        origin: MediaOrigin) -> None:
    """A site's password, an Authorization header and a URL's password, which an item's
    download needs and its owner reads back, went whole to every webhook and chat."""
    owner, _ = receivers
    target(client, "hook", owner.url("/hook"), on=["item_error"])
    target(client, "chat", owner.url("/chat", scheme="json"), on=["item_error"])
    base = urlsplit(origin.base_url)
    url = urlunsplit(base._replace(netloc=f"me:USECRET42@{base.netloc}",
                                   path="/no-such-clip.mp4"))
    cli = "--video-password VSECRET42 --add-header 'Authorization: Bearer TSECRET42'"
    [queued] = post(client, "/api/history", {"url": url, "cli": cli}).json
    [hook] = wait_for(lambda: owner.to("/hook"), timeout=90, message="the webhook")
    [chat] = wait_for(lambda: owner.to("/chat"), message="the chat message")
    for hit in (hook, chat):
        assert not any(secret in hit.body.decode() for secret in ITEM_SECRETS), hit.body
    sent = event_of(hook)["data"]
    assert sent["id"] == queued["id"]
    assert sent["cli"] == ("--video-password '********' --add-header "
                           "'Authorization:********'")
    assert sent["url"].startswith("http://me:********@127.0.0.1:")
    # its owner reads it back whole: a retry sends it again
    mine = client.simulate_get(f"/api/history/{queued['id']}").json
    assert (mine["cli"], mine["url"]) == (shlex.join(shlex.split(cli)), url)


@pytest.mark.parametrize(("cli", "shown"), [
    ("--video-password S -f best", "--video-password '********' -f best"),
    ("--password=S", "'--password=********'"),
    ("-p S", "-p '********'"),
    ("-pS", "'-p********'"),
    ("--video-pass S", "--video-pass '********'"),
    ("-2 123456", "-2 '********'"),
    ("--add-headers=Cookie:a=1", "'--add-headers=Cookie:********'"),
    ("--add-header Referer:https://x.example/", "--add-header Referer:https://x.example/"),
    ("--print title -o '%(title)s.%(ext)s'", "--print title -o '%(title)s.%(ext)s'"),
    ('"unclosed', "********"),
])
def test_the_secret_values_of_a_cli_are_masked(cli: str, shown: str) -> None:
    assert masked_cli(cli) == shown


def test_a_urls_password_is_masked_wherever_the_item_says_it() -> None:
    url = "https://me:pw@host.example:8080/p?q=1#f"
    item = {"url": url, "title": url, "error": f"HTTP 404 for {url}", "cli": "-p S", "n": 1}
    assert shared_item(item) == {
        "url": "https://me:********@host.example:8080/p?q=1#f",
        "title": "https://me:********@host.example:8080/p?q=1#f",
        "error": "HTTP 404 for https://me:********@host.example:8080/p?q=1#f",
        "cli": "-p '********'", "n": 1}
    assert item["url"] == url, "the item given is left as it was"
    for plain in ({"url": "https://host.example/x", "title": "a:pw@b"}, {"url": "http://[::1"}):
        assert shared_item(plain) == plain
