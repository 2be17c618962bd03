"""Password guessing: the throttle counts the client behind trusted proxies (and only behind
them), and hashing never holds the request threads — 100 addresses x 4 wrong passwords against
the real gunicorn while /api/ping and a correct credential keep answering."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import requests
from conftest import make_settings, started
from requests.adapters import HTTPAdapter
from support.server import Server
from test_auth import PASSWORD, PROTECTED, USER, WEB_PASSWORD, basic
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import appliance.auth
from appliance.api.app import create_app
from appliance.auth.checker import PasswordChecker
from appliance.auth.passwords import hash_password
from appliance.auth.proxies import TrustedProxies
from appliance.config import SettingsError
from appliance.errors import AppError
from appliance.server import ApplianceServer

PROXY = "10.0.0.1"
ATTACKER, USER_BEHIND_PROXY = "203.0.113.66", "198.51.100.7"


# --- who the client is ----------------------------------------------------------------------


def test_client_is_the_rightmost_untrusted_forwarded_address() -> None:
    proxies = TrustedProxies(["10.0.0.0/24", "2001:db8::/64"])
    assert proxies.client("10.0.0.1", f"{USER_BEHIND_PROXY}, {ATTACKER}") == ATTACKER
    assert proxies.client("10.0.0.1", f"{ATTACKER}, 10.0.0.7") == ATTACKER  # two proxies
    assert proxies.client("10.0.0.1", f" {ATTACKER}:4711 ") == ATTACKER
    assert proxies.client("2001:db8::1", "[2001:db8:1::9]:443") == "2001:db8:1::9"
    assert proxies.client("::ffff:10.0.0.1", ATTACKER) == ATTACKER  # IPv4-mapped peer
    assert proxies.client("10.0.0.1", None) == "10.0.0.1"
    assert proxies.client("10.0.0.1", "10.0.0.7, 10.0.0.8") == "10.0.0.7"  # only proxies
    assert proxies.client("10.0.0.1", f"{ATTACKER}, unknown") == "10.0.0.1"  # unreadable
    assert proxies.client("192.0.2.50", ATTACKER) == "192.0.2.50"  # not a trusted peer
    assert TrustedProxies().client("127.0.0.1", ATTACKER) == "127.0.0.1"  # default: none
    assert TrustedProxies().client(None, ATTACKER) == "-"


def test_trusted_proxies_setting(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, YTP_TRUSTED_PROXIES=" 127.0.0.1 ,10.1.2.3/16,,::1")
    assert settings.trusted_proxies == ("127.0.0.1/32", "10.1.0.0/16", "::1/128")
    assert make_settings(tmp_path).trusted_proxies == ()
    with pytest.raises(SettingsError, match="YTP_TRUSTED_PROXIES"):
        make_settings(tmp_path, YTP_TRUSTED_PROXIES="proxy.lan")
    # gunicorn believes X-Forwarded-Proto from the same proxies; unset, its default stays.
    configured = ApplianceServer(settings.replace(trusted_proxies=("10.1.0.0/16",)))
    assert configured.cfg.forwarded_allow_ips == ["10.1.0.0/16"]
    assert ApplianceServer(make_settings(tmp_path)).cfg.forwarded_allow_ips == [
        "127.0.0.1", "::1"]


@pytest.fixture
def proxied(tmp_path: Path) -> Any:
    runtime = started(make_settings(tmp_path, YTP_AUTH_USERNAME=USER, YTP_AUTH_PASSWORD=PASSWORD,
                                    YTP_TRUSTED_PROXIES=PROXY))
    yield runtime, falcon.testing.TestClient(create_app(runtime))
    runtime.stop()


def get(client: falcon.testing.TestClient, peer: str, forwarded: str | None,
        password: str) -> int:
    headers = basic(USER, password)
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return client.simulate_get(PROTECTED, headers=headers, remote_addr=peer).status_code


def test_behind_a_trusted_proxy_one_guesser_does_not_lock_out_the_others(proxied: Any) -> None:
    runtime, client = proxied
    for _ in range(5):
        assert get(client, PROXY, ATTACKER, "guess") == 401
    blocked_at = time.time()  # its block lasts 0.5 s: the checks below may take longer
    # The guesser is blocked, also when it writes another address in front of its own.
    assert get(client, PROXY, ATTACKER, PASSWORD) == 429
    assert get(client, PROXY, f"{USER_BEHIND_PROXY}, {ATTACKER}", PASSWORD) == 429
    # Everybody else behind the same proxy is not.
    assert get(client, PROXY, USER_BEHIND_PROXY, PASSWORD) == 200
    assert get(client, PROXY, "198.51.100.8", "typo") == 401
    login = client.simulate_post("/api/auth/login", json={"username": USER, "password": PASSWORD},
                                 headers={"X-Forwarded-For": "198.51.100.9"}, remote_addr=PROXY)
    assert login.status_code == 200
    # The others' successes left the guesser's block alone, and nothing counted the proxy.
    assert runtime.auth.throttle.retry_after(ATTACKER, blocked_at) > 0
    assert runtime.auth.throttle.retry_after(PROXY, blocked_at) == 0


def test_forwarded_for_from_an_untrusted_peer_is_ignored(proxied: Any) -> None:
    _, client = proxied
    peer = "192.0.2.50"
    for i in range(5):  # a new made-up address each time: all counted against the peer
        assert get(client, peer, f"198.51.100.{i}", "guess") == 401
    assert get(client, peer, "198.51.100.200", PASSWORD) == 429
    assert get(client, PROXY, USER_BEHIND_PROXY, PASSWORD) == 200


# --- hashing: a bounded share, no queue, no hashing twice ---------------------------------------


def test_password_checks_are_bounded_cached_and_never_queued() -> None:
    now = [1000.0]
    checker = PasswordChecker(slots=1, ttl=60, limit=2, clock=lambda: now[0])
    encoded = hash_password(WEB_PASSWORD)
    assert checker.verify(WEB_PASSWORD, encoded) is True
    assert checker.verify("wrong password", encoded) is False
    with checker._slots:  # every hashing slot busy, as under a guessing storm
        assert checker.verify(WEB_PASSWORD, encoded) is True  # verified moments ago: no hash
        with pytest.raises(AppError) as busy:
            checker.verify("wrong password", encoded)  # refused at once, not queued
        assert busy.value.status == 429 and busy.value.headers == {"Retry-After": "1"}
        assert "busy" in busy.value.message
        now[0] += 61  # a minute later the credential has to be hashed again
        with pytest.raises(AppError):
            checker.verify(WEB_PASSWORD, encoded)
    # The memory holds at most `limit` credentials, marked by an HMAC, never the password.
    other = hash_password("another password")
    assert checker.verify(WEB_PASSWORD, encoded) and checker.verify("another password", other)
    assert checker.verify(WEB_PASSWORD, hash_password(WEB_PASSWORD))
    assert len(checker._verified) == 2
    assert all(WEB_PASSWORD.encode() not in mark for mark in checker._verified)


# --- end to end ----------------------------------------------------------------------------------


class FromAddress(HTTPAdapter):
    """Connect from a given local address (127.0.0.0/8 is all loopback on Linux)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def with_password(make_server: Callable[..., Server], **env: str) -> Server:
    server = make_server(**env)
    appliance.auth.set_password(server.root / "config", WEB_PASSWORD)  # seen on next request
    assert server.get(PROTECTED, auth=("appliance", WEB_PASSWORD)).status_code == 200
    return server


@pytest.mark.e2e
def test_guessing_from_100_addresses_never_holds_the_request_threads(
    make_server: Callable[..., Server]
) -> None:
    server = with_password(make_server)
    token = appliance.auth.show_token(server.root / "config")
    done = threading.Event()
    probes: list[tuple[int, int]] = []
    probe_errors: list[BaseException] = []

    def probe() -> None:
        # Each answer must come within its deadline while the storm runs.
        while not done.is_set():
            try:
                ping = requests.get(server.url + "/api/ping", timeout=10)
                user = requests.get(server.url + PROTECTED, timeout=10,
                                    headers={"Authorization": f"Token {token}"})
            except requests.RequestException as exc:
                probe_errors.append(exc)
                return
            probes.append((ping.status_code, user.status_code))

    def guesser(n: int) -> list[requests.Response]:
        with requests.Session() as session:
            session.mount("http://", FromAddress(f"127.0.0.{n + 2}"))
            return [session.get(server.url + PROTECTED, timeout=120,
                                auth=("appliance", f"guess {n}-{i}")) for i in range(4)]

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with ThreadPoolExecutor(100) as pool:  # every address at once
            answers = [r for rs in pool.map(guesser, range(100)) for r in rs]
    finally:
        done.set()
        prober.join()
    assert probe_errors == []
    assert probes and all(p == (200, 200) for p in probes), probes
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {401, 429} and statuses.count(401) >= 1
    busy = [r for r in answers if r.status_code == 429]
    assert busy, "two hashing slots never filled up under 100 concurrent guessers"
    # The excess is refused because hashing is busy, not because of the throttle: four tries
    # per address stay under it, as before.
    assert all(r.headers["Retry-After"] == "1" and "busy" in r.json()["error"] for r in busy)
    assert server.get(PROTECTED, auth=("appliance", WEB_PASSWORD)).status_code == 200


@pytest.mark.e2e
def test_real_server_behind_a_trusted_proxy_http_and_websocket(
    make_server: Callable[..., Server]
) -> None:
    server = make_server(YTP_AUTH_USERNAME=USER, YTP_AUTH_PASSWORD=PASSWORD,
                         YTP_TRUSTED_PROXIES="127.0.0.1")

    def http(forwarded: str, password: str) -> int:
        return requests.get(server.url + PROTECTED, auth=(USER, password), timeout=30,
                            headers={"X-Forwarded-For": forwarded}).status_code

    def websocket(forwarded: str, password: str) -> int:
        try:
            with connect(server.ws_url, open_timeout=10, additional_headers={
                    "X-Forwarded-For": forwarded, **basic(USER, password)}):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert [http(ATTACKER, "guess") for _ in range(4)] == [401] * 4
    assert websocket(ATTACKER, "guess") == 401  # the same count as HTTP
    assert http(ATTACKER, PASSWORD) == 429 and websocket(ATTACKER, PASSWORD) == 429
    assert http(USER_BEHIND_PROXY, PASSWORD) == 200
    assert websocket(USER_BEHIND_PROXY, PASSWORD) == 101
    assert f"authentication failed from {ATTACKER}" in server.log()

    # A peer that is not a trusted proxy cannot pick its address: 127.0.0.9 is counted.
    with requests.Session() as session:
        session.mount("http://", FromAddress("127.0.0.9"))
        statuses = [session.get(server.url + PROTECTED, auth=(USER, "guess"), timeout=30,
                                headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                    for i in range(6)]
    assert statuses == [401] * 5 + [429]
