"""Pages on other sites cannot drive the service while auth is off: JSON bodies only, no
state-changing request from a foreign origin, the quick-add GET only for a navigation a person
started, and the websocket handshake checked for its Origin (real gunicorn, real websocket
client, real yt-dlp for what is accepted)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from conftest import make_settings, started
from falcon.testing import Result, TestClient
from support.origin import MediaOrigin
from support.server import Server, wait_for
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from appliance import events
from appliance.api.app import create_app
from appliance.auth.browsers import BrowserPolicy
from appliance.runtime import Runtime

EVIL = "http://evil.example"
UI = "https://ui.example"
HOST = "nas.local:8081"
BLOB = json.dumps({"url": "http://127.0.0.1:9/never"})


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    """One real runtime for the module: the rules hold per request, and a runtime costs
    seconds to start and stop."""
    runtime = started(make_settings(tmp_path_factory.mktemp("cross-site"), YTP_CORS_ORIGINS=UI))
    yield runtime, TestClient(create_app(runtime))
    runtime.stop()


@pytest.fixture
def added(app: tuple[Runtime, TestClient]) -> Iterator[list[Any]]:
    """Every item_added the bus announces (an add that happened anywhere)."""
    seen: list[Any] = []
    unsubscribe = app[0].bus.subscribe(
        lambda event: seen.append(event.data) if event.name == events.ITEM_ADDED else None)
    yield seen
    unsubscribe()


def assert_error(result: Result, status: int, code: str) -> None:
    assert result.status_code == status, result.text
    assert result.json["code"] == code and result.json["error"]


# --- bodies: application/json only ----------------------------------------------------------


@pytest.mark.parametrize("content_type", [
    None,  # fetch(url, {method: "POST", body: new Blob([json])}) sends no type, no preflight
    "text/plain",
    "text/plain;charset=UTF-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/jsonp",
])
def test_a_body_that_is_not_declared_json_is_415_and_nothing_is_queued(
    app: tuple[Runtime, TestClient], added: list[Any], content_type: str | None
) -> None:
    _, client = app
    headers = {"Content-Type": content_type} if content_type else {}
    for path in ("/api/history", "/api/downloads"):
        result = client.simulate_post(path, body=BLOB, headers=headers)
        assert_error(result, 415, "UNSUPPORTED_MEDIA_TYPE")
        assert "application/json" in result.json["error"]
    assert_error(client.simulate_put("/api/settings", body='{"stall_timeout": 9}',
                                     headers=headers), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert added == []


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "Application/JSON",
    "application/merge-patch+json",
])
def test_json_bodies_are_accepted(
    app: tuple[Runtime, TestClient], origin: MediaOrigin, added: list[Any], content_type: str
) -> None:
    _, client = app
    result = client.simulate_post("/api/history", body=json.dumps({"url": origin.clip_url}),
                                  headers={"Content-Type": content_type})
    assert result.status_code == 200, result.text
    assert [a["url"] for a in added] == [origin.clip_url]


def test_no_body_is_judged_by_the_endpoint_not_415(app: tuple[Runtime, TestClient]) -> None:
    _, client = app
    assert_error(client.simulate_post("/api/history"), 400, "INVALID_REQUEST")


# --- state-changing requests from other origins --------------------------------------------------


def test_a_post_from_a_foreign_page_is_403_before_it_does_anything(
    app: tuple[Runtime, TestClient], added: list[Any]
) -> None:
    runtime, client = app
    runtime.engine.set_paused(False)
    # A bodyless POST (fetch with mode "no-cors") has no content type to refuse.
    for origin in (EVIL, "null", "http://nas.local:9999", "http://nas.local.evil.example:8081",
                   f"{EVIL}, http://{HOST}"):
        result = client.simulate_post("/api/system/pause",
                                      headers={"Origin": origin, "Host": HOST})
        assert_error(result, 403, "FORBIDDEN")
        assert "YTP_CORS_ORIGINS" in result.json["error"]
    assert runtime.engine.paused is False
    result = client.simulate_post("/api/history", json={"url": "http://127.0.0.1:9/x"},
                                  headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
    assert_error(result, 403, "FORBIDDEN")
    assert_error(client.simulate_delete("/api/history", json={"type": "done", "status": "all"},
                                        headers={"Origin": EVIL}), 403, "FORBIDDEN")
    assert added == []


@pytest.mark.parametrize("headers", [
    {},  # not a browser
    {"Origin": f"http://{HOST}", "Host": HOST},  # the service's own page
    {"Origin": "http://NAS.local:8081/", "Host": HOST},
    {"Origin": "https://media.lan", "Host": "media.lan"},  # default port both sides
    # A reverse proxy that rewrites Host: the browser still says it is same-origin.
    {"Origin": "https://media.example", "Host": "127.0.0.1:8081", "Sec-Fetch-Site": "same-origin"},
    {"Origin": UI},  # YTP_CORS_ORIGINS
])
def test_a_post_from_the_own_origin_a_cors_origin_or_no_browser_works(
    app: tuple[Runtime, TestClient], headers: dict[str, str]
) -> None:
    runtime, client = app
    runtime.engine.set_paused(False)
    assert client.simulate_post("/api/system/pause", headers=headers).status_code == 200
    assert runtime.engine.paused is True


# --- GET /api/history/add ------------------------------------------------------------------------


def quick_add(client: TestClient, url: str, **fetch: str) -> Result:
    headers = {f"Sec-Fetch-{k.title()}": v for k, v in fetch.items()}
    return client.simulate_get("/api/history/add", params={"url": url}, headers=headers)


@pytest.mark.parametrize("fetch", [
    {"dest": "image", "mode": "no-cors", "site": "cross-site"},  # <img src=…>
    {"dest": "script", "mode": "no-cors", "site": "cross-site"},
    {"dest": "style", "mode": "no-cors", "site": "cross-site"},
    {"dest": "iframe", "mode": "navigate", "site": "cross-site", "user": "?1"},
    {"dest": "empty", "mode": "no-cors", "site": "cross-site"},  # fetch()
    {"dest": "image", "mode": "no-cors", "site": "same-site"},  # another port of the host
    {"dest": "document", "mode": "navigate", "site": "cross-site"},  # location = … on its own
    {"dest": "document", "mode": "navigate", "site": "same-site"},
])
def test_quick_add_loaded_by_another_page_is_403_and_adds_nothing(
    app: tuple[Runtime, TestClient], added: list[Any], fetch: dict[str, str]
) -> None:
    _, client = app
    result = quick_add(client, "http://127.0.0.1:9/x", **fetch)
    assert result.status_code == 403
    assert result.json["status"] is False and result.json["code"] == "FORBIDDEN"
    assert result.json["message"] == result.json["error"] and "Refused" in result.json["message"]
    assert added == []


@pytest.mark.parametrize("fetch", [
    {},  # curl, scripts, older browsers
    {"dest": "document", "mode": "navigate", "site": "cross-site", "user": "?1"},  # bookmarklet
    {"dest": "document", "mode": "navigate", "site": "none", "user": "?1"},  # typed, bookmark
    {"dest": "document", "mode": "navigate", "site": "none"},
    {"mode": "navigate", "site": "cross-site", "user": "?1"},  # no Dest: older Safari
    {"dest": "empty", "mode": "cors", "site": "same-origin"},  # the API docs' "Try it out"
])
def test_quick_add_from_a_person_or_a_program_is_queued(
    app: tuple[Runtime, TestClient], origin: MediaOrigin, added: list[Any],
    fetch: dict[str, str]
) -> None:
    _, client = app
    result = quick_add(client, origin.clip_url, **fetch)
    assert result.status_code == 200, result.text
    assert result.json["status"] is True
    assert [a["url"] for a in added] == [origin.clip_url]


def test_quick_add_from_a_cors_origin_by_fetch_is_queued(
    app: tuple[Runtime, TestClient], origin: MediaOrigin, added: list[Any]
) -> None:
    _, client = app
    result = client.simulate_get("/api/history/add", params={"url": origin.clip_url}, headers={
        "Origin": UI, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Dest": "empty"})
    assert result.status_code == 200, result.text
    assert len(added) == 1


# --- the rule itself ---------------------------------------------------------------------------


def test_origin_rule_compares_host_and_port_and_knows_the_http_port() -> None:
    policy = BrowserPolicy([UI], http_port=8081)

    def allowed(origin: str | None, host: str | None, site: str | None = None) -> bool:
        headers = {"Origin": origin, "Host": host, "Sec-Fetch-Site": site}
        return policy.origin_refusal(headers.get) is None

    assert allowed(None, "nas:8082")
    assert allowed("http://nas:8082", "nas:8082")
    assert allowed("http://nas:8081", "nas:8082")  # a page of the API, handshake on ws port
    assert allowed("http://[::1]:8081", "[::1]:8082")
    assert allowed("https://nas", "nas:443") and allowed("http://nas:80", "nas")
    assert allowed(f"{UI}/", "anything")
    assert allowed(EVIL, "nas:8082", "same-origin")
    assert not allowed("http://nas:8083", "nas:8082")
    assert not allowed("http://other:8081", "nas:8082")
    assert not allowed("https://nas", "nas:80")  # scheme decides the default port
    assert not allowed(EVIL, "nas:8082", "cross-site")
    assert not allowed("null", "nas:8082")
    assert not allowed("file://", "nas:8082")
    assert not allowed("http://user@nas:8082", "nas:8082")
    assert not allowed("http://nas:8082", None)
    assert not allowed("http://nas:99999", "nas:99999")


# --- end to end: the real server and a real websocket client -------------------------------------


@pytest.mark.e2e
def test_real_server_refuses_foreign_pages_and_serves_its_own(
    make_server: Callable[..., Server], origin: MediaOrigin
) -> None:
    server = make_server(YTP_CORS_ORIGINS=UI)
    own = f"http://127.0.0.1:{server.port}"

    def queue() -> list[dict[str, Any]]:
        body = server.get("/api/history").json()
        return body["queue"] + body["history"]

    # The Blob-style POST: a body with no Content-Type, as a browser sends it cross-site.
    blob = requests.post(server.url + "/api/history", data=BLOB.encode(), timeout=30)
    assert blob.status_code == 415 and blob.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    plain = requests.post(server.url + "/api/history", data=BLOB.encode(), timeout=30,
                          headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415

    # The websocket from a page on evil.example: refused at the handshake, on both paths.
    for path in ("/ws", "/api/ws"):
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{server.port + 1}{path}", origin=EVIL, open_timeout=10)
        response = refused.value.response
        assert response.status_code == 403
        assert b"evil.example" in response.body and b"YTP_CORS_ORIGINS" in response.body
    assert "evil.example" in server.log()
    assert queue() == []

    def add_over_websocket(origin_header: str | None) -> dict[str, Any]:
        with connect(server.ws_url, origin=origin_header, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["event"] == "connected"
            ws.send(json.dumps({"event": "add_url", "data": {"url": origin.clip_url}}))
            while True:
                message = json.loads(ws.recv(timeout=30))
                if message["event"] == "item_status":
                    return message["data"]["data"]

    # The service's own page (HTTP port), the handshake's own host:port, a CORS origin, and a
    # client that is not a browser: each can add.
    origins = [own, f"http://127.0.0.1:{server.port + 1}", UI, None]
    statuses = [add_over_websocket(o) for o in origins]
    assert [s["status"] for s in statuses] == ["queued"] * 4
    wait_for(lambda: len(queue()) == 4, message="four items from the allowed websockets")
