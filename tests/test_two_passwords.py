"""The two passwords (``YTP_AUTH_*`` and ``web passwd``), which a shared box may give to two
people: a success with one forgives the failures that may have been aimed at it, never the
guessing of the other — on the real gunicorn behind a trusted proxy, HTTP and websocket — and
the throttle's and the authenticator's rules in process."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from support.server import Server, wait_for
from test_auth import PASSWORD, PROTECTED, USER, WEB_PASSWORD, App, apikey, basic
from test_guessing import with_password
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import appliance.auth
from appliance.auth import ENV, FILE
from appliance.auth.throttle import Throttle


@pytest.mark.e2e
def test_one_password_never_forgives_the_guessing_of_the_other(
    make_server: Callable[..., Server]
) -> None:
    server = with_password(make_server, YTP_AUTH_USERNAME=USER, YTP_AUTH_PASSWORD=PASSWORD,
                           YTP_TRUSTED_PROXIES="127.0.0.1")

    def http(client: str, user: str, password: str) -> int:
        return requests.get(server.url + PROTECTED, auth=(user, password), timeout=30,
                            headers={"X-Forwarded-For": client}).status_code

    def websocket(client: str, user: str, password: str) -> int:
        try:
            with connect(server.ws_url, open_timeout=30, additional_headers={
                    "X-Forwarded-For": client, **basic(user, password)}):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    def count(client: str, failures: int) -> None:
        """The service's own count of the client's failures, as its log says (its blocks
        last 0.5 s at first: a loaded box may take longer between two requests)."""
        said = re.compile(rf"authentication failed from {re.escape(client)}: .*"
                          r"\(failure (\d+)\)")
        wait_for(lambda: [int(n) for n in said.findall(server.log())][-1:] == [failures],
                 message=f"failure {failures} of {client} in the log")

    # Who holds the YTP password guesses the web passwd one, under either name it opens,
    # proving the YTP one between guesses (by HTTP, by the websocket): the fifth failure
    # counts as the fifth, and blocks.
    for n, name in enumerate(["appliance", USER]):
        client = f"203.0.113.{10 + n}"
        assert [http(client, name, f"guess {i}") for i in range(4)] == [401] * 4
        assert http(client, USER, PASSWORD) == 200
        assert websocket(client, USER, PASSWORD) == 101
        assert websocket(client, name, "guess 4") == 401
        count(client, 5)
    # And the other way round: the web passwd one does not forgive guesses at the YTP one.
    client = "203.0.113.20"
    assert [http(client, USER, f"guess {i}") for i in range(4)] == [401] * 4
    assert websocket(client, "appliance", WEB_PASSWORD) == 101
    assert http(client, "appliance", WEB_PASSWORD) == 200
    assert http(client, USER, "guess 4") == 401
    count(client, 5)
    # A person's typos of the password they then type right are still forgiven, the
    # login's too.
    client = "203.0.113.30"
    assert [http(client, "appliance", f"typo {i}") for i in range(4)] == [401] * 4
    assert http(client, "appliance", WEB_PASSWORD) == 200
    assert [http(client, "appliance", f"typo {i}") for i in range(4)] == [401] * 4
    count(client, 4)
    login = requests.post(server.url + "/api/auth/login", timeout=30,
                          json={"username": "appliance", "password": WEB_PASSWORD},
                          headers={"X-Forwarded-For": client})
    assert login.status_code == 200
    assert http(client, "appliance", "typo") == 401
    count(client, 1)


def test_a_success_forgives_only_the_failures_aimed_at_what_it_proved() -> None:
    throttle = Throttle(threshold=3, base=1.0, cap=10.0)
    for scopes in ([ENV], [FILE], [ENV, FILE]):
        throttle.failure("2001:db8:1:2::5", 0.0, scopes)
    # The largest count decides: ENV and FILE have 2 each, the address is not blocked yet.
    assert throttle.retry_after("2001:db8:1:2::5", 0.0) == 0.0
    throttle.success("2001:db8:1:2::6", ENV)  # its /64's and /48's ENV failures forgiven
    assert throttle.failure("2001:db8:1:2::5", 0.0, [FILE]) == 3
    assert throttle.retry_after("2001:db8:1:2::5", 0.0) == 1.0
    throttle.success("2001:db8:1:2::5", FILE)
    assert len(throttle) == 1  # the address's own ENV failures stay
    throttle.success("2001:db8:1:2::5", ENV)
    assert len(throttle) == 0  # nothing left to count: the entries go
    # A scope counted twice in one failure counts once; no scope at all is the default one.
    assert throttle.failure("a", 0.0, [FILE, FILE]) == 1
    assert throttle.failure("b", 0.0, []) == 1
    throttle.success("b")
    assert throttle.failure("b", 0.0) == 1


@pytest.mark.parametrize(("env", "web", "user", "aimed", "env_user"), [
    (True, True, USER, [ENV, FILE], USER),  # the YTP name opens both
    (True, True, "appliance", [FILE], USER),
    (True, True, "stranger", [ENV, FILE], USER),
    (True, True, None, [ENV, FILE], USER),  # a token or an unreadable credential
    (True, False, "appliance", [ENV], USER),  # it opens nothing: the only password's typo
    (True, False, "stranger", [ENV], USER),
    (False, True, USER, [FILE], USER),
    (True, True, "appliance", [ENV, FILE], "appliance"),  # a YTP user named appliance
    (False, True, None, [FILE], USER),
])
def test_what_a_failure_may_have_been_aimed_at(
    tmp_path: Path, env: bool, web: bool, user: str | None, aimed: list[str], env_user: str
) -> None:
    app = App(tmp_path, **({"YTP_AUTH_USERNAME": env_user, "YTP_AUTH_PASSWORD": PASSWORD}
                           if env else {}))
    try:
        if web:
            appliance.auth.set_password(app.config_path, WEB_PASSWORD)
        name = None if user is None else user.encode()
        assert app.auth._aimed_at(app.auth.state(), name) == aimed
    finally:
        app.runtime.stop()


@pytest.fixture
def both(tmp_path: Path) -> Iterator[App]:
    """The real runtime with both passwords."""
    app = App(tmp_path, YTP_AUTH_USERNAME=USER, YTP_AUTH_PASSWORD=PASSWORD)
    appliance.auth.set_password(app.config_path, WEB_PASSWORD)
    yield app
    app.runtime.stop()


def test_a_request_proving_both_passwords_forgives_both(both: App) -> None:
    app = both
    client = "203.0.113.40"
    for user in (USER, "appliance"):
        for _ in range(2):
            assert app.get(headers=basic(user, "guess"), remote_addr=client).status_code == 401
    both = app.get(headers=basic(USER, PASSWORD), remote_addr=client,
                   query_string="apikey=" + apikey("appliance", WEB_PASSWORD))
    assert both.status_code == 200
    assert len(app.auth.throttle) == 0



@pytest.mark.parametrize("via", ["basic", "login"])
def test_the_password_typed_right_forgives_its_typos_whole(both: App, via: str) -> None:
    """Typos under "appliance" were aimed at the web passwd password only: proving it leaves
    nothing counted (nor under the YTP password, which "appliance" does not open)."""
    client = "203.0.113.50"
    for _ in range(4):
        if via == "basic":
            typo = both.get(headers=basic("appliance", "typo"), remote_addr=client)
        else:
            typo = both.login("appliance", "typo", remote_addr=client)
        assert typo.status_code == 401
    assert both.get(headers=basic("appliance", WEB_PASSWORD), remote_addr=client).status_code \
        == 200
    assert len(both.auth.throttle) == 0
