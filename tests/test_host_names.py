"""DNS rebinding: while authentication is off, the service answers only to names a stranger's
DNS cannot answer for. A page on ``rebind.attacker.example`` whose name is made to resolve to
the service is, to the browser, the service's own origin (its requests same-origin, the
answers readable); only its ``Host`` header gives it away."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
import requests
from falcon.testing import TestClient
from support.server import Server
from support.ws_sidecar import recv_json, refusal
from websockets.sync.client import connect

from appliance.api.app import create_app
from appliance.auth import set_password
from appliance.auth.hosts import HostPolicy
from appliance.runtime import Runtime

FOREIGN = "rebind.attacker.example"
REFUSED = (f"This service does not answer to the name '{FOREIGN}' while authentication is "
           "off: a web page could reach it under a name of its own (DNS rebinding). Use its IP "
           "address or local name, set a password (`appliance web passwd`), or add the name to "
           "YTP_ALLOWED_HOSTS.")


@pytest.mark.parametrize(("host", "known"), [
    ("192.168.1.20:8081", True), ("[::1]:8081", True), ("[fe80::1%25eth0]", True),
    ("localhost:8081", True), ("app.localhost", True), ("raspberrypi:8081", True),
    ("raspberrypi.local", True), ("NAS.LAN:8081", True), ("pi.home.arpa", True),
    ("box.internal", True), ("pi.localdomain", True), ("media.home", True),
    ("raspberrypi.local.", True),  # a final dot is the same name
    ("media.example.com", True), ("a.b.tail.example.net", True), ("cors.example", True),
    (FOREIGN, False), (f"{FOREIGN}:8081", False), ("localhost.attacker.example", False),
    ("local.attacker.example", False), ("example.com", False),  # not under *.example.com
    ("lan.attacker.example", False), ("evil-lan", True),
    ("user@localhost", False), ("localhost/x", False), ("localhost:http", False), ("", False),
    ("[::1", False),
])
def test_which_names_are_answered(host: str, known: bool) -> None:
    policy = HostPolicy(["media.example.com", "*.tail.example.net"], ["https://cors.example"])
    assert (policy.refusal(host) is None) is known


def test_the_machines_own_name_and_a_request_without_host_are_answered() -> None:
    policy = HostPolicy([])
    assert policy.refusal(f"{socket.gethostname()}:8081") is None
    assert policy.refusal(None) is None  # HTTP/1.0: no browser sends it


def test_the_machines_own_name_is_taken_without_its_final_dot(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "Box.Example.")
    assert HostPolicy([]).refusal("box.example:8081") is None


def test_a_refused_name_is_shown_to_its_first_253_characters() -> None:
    name = "a" * 250 + ".example"
    refusal = HostPolicy([]).refusal(name)
    assert refusal is not None and repr(name[:253]) in refusal.message
    assert repr(name[:254]) not in refusal.message


def test_a_star_answers_to_any_name() -> None:
    assert HostPolicy(["*"]).refusal(FOREIGN) is None


@pytest.fixture(name="open_service")
def _open_service(start_runtime: Callable[..., Runtime]) -> TestClient:
    return TestClient(create_app(start_runtime(YTP_ALLOWED_HOSTS="")))


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/history"), ("GET", "/api/ping"), ("POST", "/api/system/pause"),
    ("DELETE", "/api/history"), ("OPTIONS", "/api/history"),
])
def test_a_request_to_a_foreign_name_is_refused_while_auth_is_off(
        open_service: TestClient, method: str, path: str) -> None:
    response = open_service.simulate_request(method, path, host=FOREIGN, headers={
        "Origin": f"http://{FOREIGN}", "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 421
    assert response.json == {"error": REFUSED, "code": "MISDIRECTED_REQUEST"}
    # The same request by the service's address is answered.
    assert open_service.simulate_get("/api/ping", host="192.168.1.20").status_code == 200


def test_with_auth_on_a_foreign_name_meets_authentication(
        start_runtime: Callable[..., Runtime]) -> None:
    """A rebinding page has no credentials (the browser keeps them per origin), and a
    reverse proxy's public name must work for the people who have them."""
    service = start_runtime(YTP_ALLOWED_HOSTS="", YTP_AUTH_USERNAME="alice",
                            YTP_AUTH_PASSWORD="s3cr:et")
    client = TestClient(create_app(service))
    assert client.simulate_get("/api/history", host=FOREIGN).status_code == 401
    authorized = client.simulate_get("/api/history", host=FOREIGN,
                                     headers={"Authorization": "Basic YWxpY2U6czNjcjpldA=="})
    assert authorized.status_code == 200


def test_a_password_set_while_running_lifts_the_guard(start_runtime: Callable[..., Runtime]
                                                     ) -> None:
    service = start_runtime(YTP_ALLOWED_HOSTS="")
    client = TestClient(create_app(service))
    assert client.simulate_get("/api/history", host=FOREIGN).status_code == 421
    set_password(service.settings.config_path, "correct horse")
    assert client.simulate_get("/api/history", host=FOREIGN).status_code == 401


def test_the_real_server_and_its_websocket_refuse_a_rebound_name(
        make_server: Callable[..., Server]) -> None:
    server = make_server(YTP_ALLOWED_HOSTS="")
    with requests.Session() as http:
        response = http.get(f"{server.url}/api/history", headers={"Host": f"{FOREIGN}:80"},
                            timeout=10)
        assert response.status_code == 421, response.text
        assert response.json()["error"] == REFUSED
        assert http.get(f"{server.url}/api/history", timeout=10).status_code == 200
    port = server.port + 1
    with socket.create_connection(("127.0.0.1", port)) as sock:
        answer = refusal(f"ws://{FOREIGN}:{port}/ws", sock=sock)
    assert answer.status_code == 421
    assert answer.body.decode() == f"Misdirected Request: {REFUSED}\n"
    with connect(f"ws://127.0.0.1:{port}/ws") as ws:
        assert recv_json(ws)["event"] == "connected"
