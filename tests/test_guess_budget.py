"""The service-wide budget of failed password guesses: one who spreads guesses over a whole
IPv6 /32 (a new /48 each time, every one under its own count) is held off once the budget is
spent, while the LAN, loopback, addresses that logged in before, login sessions and tokens
are not — on the real gunicorn behind a trusted proxy, HTTP and websocket — and the budget's
rules in process."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from support.server import Server
from test_auth import PASSWORD, PROTECTED, USER, App, basic
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import appliance.auth
from appliance.auth import COOKIE_NAME
from appliance.auth.budget import GuessBudget, on_lan

KNOWN, LAN = "198.51.100.7", "192.168.1.20"


def stranger(n: int) -> str:
    """An address of a new /48 of the attacker's 2001:db8::/32 for every ``n``."""
    return f"2001:db8:{n:x}::1"


@pytest.mark.e2e
def test_a_guesser_spread_over_a_slash_32_is_held_off_and_the_owner_is_not(
    make_server: Callable[..., Server]
) -> None:
    server = make_server(YTP_AUTH_USERNAME=USER, YTP_AUTH_PASSWORD=PASSWORD,
                         YTP_TRUSTED_PROXIES="127.0.0.1")
    token = appliance.auth.show_token(server.root / "config")

    def http(client: str | None, password: str | None = PASSWORD,
             **headers: str) -> requests.Response:
        if client is not None:
            headers["X-Forwarded-For"] = client
        auth = (USER, password) if password is not None else None
        return requests.get(server.url + PROTECTED, auth=auth, headers=headers, timeout=30)

    def websocket(client: str, password: str) -> int:
        try:
            with connect(server.ws_url, open_timeout=30, additional_headers={
                    "X-Forwarded-For": client, **basic(USER, password)}):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    # Before the attack: the owner logs in from an address of their own (remembered), and
    # a browser on the LAN keeps a session.
    assert http(KNOWN).status_code == 200
    login = requests.post(server.url + "/api/auth/login", timeout=30,
                          json={"username": USER, "password": PASSWORD},
                          headers={"X-Forwarded-For": LAN})
    assert login.status_code == 200
    cookie = f"{COOKIE_NAME}={login.cookies[COOKIE_NAME]}"

    # The attack: one guess from each /48, none of which is ever blocked on its own. The
    # budget (100, one more every 10 s) runs out; a loaded box that took long gets a few more.
    statuses = []
    for n in range(300):
        statuses.append(http(stranger(n), f"guess {n}").status_code)
        if statuses[-1] != 401:
            break
    assert set(statuses[:100]) == {401} and statuses[-1] == 429, statuses

    def refused_while_spent(check: Callable[[str], int]) -> bool:
        """Whether ``check`` from a stranger is refused right after a guess keeps the budget
        spent (a guess comes back every 10 s: asked again should a slow box let one in)."""
        for n in range(1000, 1020):
            http(stranger(n), "guess")
            if check(stranger(n + 1000)) == 429:
                return True
        return False

    answers: list[requests.Response] = []

    def right_password(client: str) -> int:
        answers.append(http(client))
        return answers[-1].status_code

    # The right password, from a stranger: not even checked, by HTTP or the websocket.
    assert refused_while_spent(right_password)
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert "many addresses" in answers[-1].json()["error"]
    assert refused_while_spent(lambda client: websocket(client, PASSWORD))

    # The owner is not locked out: the LAN, loopback, a known address (its password still
    # checked), a login session and a token from anywhere.
    assert http(LAN).status_code == 200
    assert http(None).status_code == 200  # loopback itself
    assert websocket(LAN, PASSWORD) == 101
    assert http(KNOWN).status_code == 200
    assert http(KNOWN, "typo").status_code == 401
    assert http(stranger(1002), None, Cookie=cookie).status_code == 200
    assert http(stranger(1003), None, Authorization=f"Token {token}").status_code == 200
    assert "used up the service's budget" in server.log()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    """The real runtime (falcon's client), its clock the test's."""
    app = App(tmp_path, YTP_AUTH_USERNAME=USER, YTP_AUTH_PASSWORD=PASSWORD)
    now = [1_000_000.0]
    app.auth.clock = lambda: now[0]
    app.now = now  # type: ignore[attr-defined]
    yield app
    app.runtime.stop()


def test_the_budget_fills_again_one_guess_per_interval(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    app.auth.budget = GuessBudget(size=3, refill=10.0)
    now = app.now  # type: ignore[attr-defined]

    def guess(n: int, password: str = "guess", **kwargs: str) -> int:
        return app.get(headers=basic(USER, password), remote_addr=stranger(n),
                       **kwargs).status_code

    with caplog.at_level(logging.WARNING, logger="appliance.auth"):
        assert [guess(n) for n in range(3)] == [401] * 3
    warnings = [r.getMessage() for r in caplog.records if "budget" in r.getMessage()]
    assert len(warnings) == 1 and stranger(2) in warnings[0] and "(3, one more every 10 s)" \
        in warnings[0]
    blocked = app.get(headers=basic(USER, PASSWORD), remote_addr=stranger(3))
    assert blocked.status_code == 429 and blocked.headers["Retry-After"] == "10"
    assert blocked.json["error"] == (
        "Too many failed attempts on this service from many addresses; try again in 10 s (a "
        "login session, a token or the LAN are not held off).")
    now[0] += 9.5
    assert guess(4, PASSWORD) == 429
    assert app.auth.budget.retry_after(now[0]) == pytest.approx(0.5)
    now[0] += 0.5  # one guess again
    assert guess(5) == 401
    assert guess(6, PASSWORD) == 429
    # Spent again within the hour: said once.
    assert len([r for r in caplog.records if "budget" in r.getMessage()]) == 1
    now[0] += 25.0  # two and a half: two guesses, the half kept
    assert [guess(7), guess(8), guess(9, PASSWORD)] == [401, 401, 429]
    assert app.auth.budget.retry_after(now[0]) == pytest.approx(5.0)
    now[0] += 3600  # a long quiet fills it to its size, no more
    assert app.auth.budget.retry_after(now[0]) == 0.0
    assert [guess(n) for n in range(10, 14)] == [401, 401, 401, 429]
    # A token alone is not held off, and a wrong one does not spend the budget.
    now[0] += 10.0
    assert app.get(headers={"Authorization": "Token wrong"},
                   remote_addr=stranger(20)).status_code == 401
    assert guess(21, PASSWORD) == 200


def test_a_login_makes_its_address_known_for_a_while(app: App) -> None:
    app.auth.budget = GuessBudget(size=1, refill=10.0, known_for=100.0, max_known=2)
    now = app.now  # type: ignore[attr-defined]
    phone = "2001:db8:aaaa:1::5"
    assert app.login(USER, PASSWORD, remote_addr=phone).status_code == 200
    assert app.get(headers=basic(USER, "guess"), remote_addr=stranger(1)).status_code == 401
    # Spent: strangers wait, the phone's /64 does not (a new privacy address of it either),
    # and its own failures spend nothing.
    assert app.get(headers=basic(USER, PASSWORD), remote_addr=stranger(2)).status_code == 429
    assert app.get(headers=basic(USER, "typo"),
                   remote_addr="2001:db8:aaaa:1::6").status_code == 401
    assert app.login(USER, PASSWORD, remote_addr="2001:db8:aaaa:1::7").status_code == 200
    now[0] += 10.0
    assert app.auth.budget.retry_after(now[0]) == 0.0
    # Known for `known_for` seconds after its last proof; then a stranger again.
    now[0] += 85.0
    assert not app.auth.budget.stranger(phone, now[0])
    now[0] += 10.0
    assert app.auth.budget.stranger(phone, now[0])
    assert app.get(headers=basic(USER, "typo"), remote_addr=phone).status_code == 401
    assert app.get(headers=basic(USER, PASSWORD), remote_addr=phone).status_code == 429
    # At most `max_known` kept, the least recently proved dropped first.
    budget = GuessBudget(max_known=2)
    for address in ("198.51.100.1", "198.51.100.2", "198.51.100.1", "198.51.100.3"):
        budget.known(address, 0.0)
    assert [budget.stranger(f"198.51.100.{n}", 0.0) for n in (1, 2, 3)] == [False, True, False]
    budget.known(LAN, 0.0)  # the LAN needs no place
    assert budget.stranger("198.51.100.1", 0.0) is False


@pytest.mark.parametrize(("address", "lan"), [
    ("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("[::1]", True),
    ("10.1.2.3", True), ("172.16.0.1", True), ("172.31.255.255", True), ("192.168.0.10", True),
    ("169.254.1.1", True), ("fd00::1", True), ("fe80::1", True), ("::ffff:192.168.1.1", True),
    ("172.32.0.1", False), ("11.0.0.1", False), ("100.64.0.1", False),  # CGNAT: the ISP's
    ("192.0.2.1", False), ("203.0.113.9", False), ("2001:db8::1", False),  # documentation
    ("::ffff:8.8.8.8", False),
    ("2002:c0a8:101::1", False), ("64:ff9b::c0a8:101", False),  # 6to4, NAT64: from elsewhere
    ("2606:4700::1111", False), ("-", False), ("", False),
])
def test_which_addresses_are_the_lan(address: str, lan: bool) -> None:
    assert on_lan(address) is lan


def test_a_spent_budget_is_said_whole_once_an_hour(caplog: pytest.LogCaptureFixture) -> None:
    budget = GuessBudget(size=1, refill=10.0)
    with caplog.at_level(logging.WARNING, logger="appliance.auth"):
        budget.spend(0.0, "2001:db8:1::1")
        budget.spend(3599.0, "2001:db8:2::1")  # spent again (refilled meanwhile): not said
        budget.spend(3600.0, "2001:db8:3::1")  # an hour on: said again
    assert [r.getMessage() for r in caplog.records] == [
        "Failed password guesses from addresses neither on the LAN nor logged in from before "
        "used up the service's budget (1, one more every 10 s), the last from "
        f"{address}: for now passwords from such addresses are checked at most one every "
        "10 s (the LAN, known addresses, login sessions and tokens are not held off)"
        for address in ("2001:db8:1::1", "2001:db8:3::1")]


def test_a_failed_login_spends_the_budget_too(app: App) -> None:
    app.auth.budget = GuessBudget(size=1, refill=10.0)
    assert app.login(USER, "guess", remote_addr=stranger(1)).status_code == 401
    assert app.login(USER, PASSWORD, remote_addr=stranger(2)).status_code == 429


def test_what_is_left_is_never_a_negative_wait() -> None:
    budget = GuessBudget(size=3, refill=10.0)
    budget.spend(0.0, "a")
    budget.spend(0.0, "a")
    assert budget.retry_after(0.0) == 0.0  # one left
    assert budget.retry_after(5.0) == 0.0  # one and a half
    budget.spend(5.0, "a")
    assert budget.retry_after(5.0) == pytest.approx(5.0)
