"""A notification target's secrets stay with it: whoever can edit a target (any API client,
anyone on the LAN while auth is off) reads them masked, and cannot have them sent to a host of
their own by changing the URL and keeping, or sending back masked, what is stored.

The receivers are real HTTP servers on 127.0.0.1 in this process; "another host" is another
port of it (a different destination for the sender all the same).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from falcon.testing import TestClient
from support.webhooks import Receiver, send, target

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
