"""The rules authentication decides by, each on its own and table-driven: the guessing
throttle, who the client is behind proxies, signed cookies and tickets, password hashes, the
bounded password checker and what a browser page may do."""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path

import pytest
from conftest import make_settings

from appliance.auth import (
    COOKIE_NAME,
    Authenticator,
    Identity,
    gen_token,
    sessions,
    set_password,
)
from appliance.auth.browsers import BrowserPolicy
from appliance.auth.checker import PasswordChecker
from appliance.auth.passwords import hash_password, verify_password
from appliance.auth.proxies import MAX_HOPS, MAX_NOTED, TrustedProxies
from appliance.auth.throttle import Throttle
from appliance.errors import AppError

# --- throttle -----------------------------------------------------------------------------


def test_the_fifth_failure_blocks_and_the_wait_doubles_up_to_the_cap() -> None:
    throttle = Throttle(threshold=5, base=0.5, cap=4.0)
    waits = []
    for n in range(1, 10):
        assert throttle.failure("a", now=100.0) == n
        waits.append(throttle.retry_after("a", now=100.0))
    assert waits == [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert throttle.retry_after("a", now=103.0) == 1.0
    assert throttle.retry_after("a", now=105.0) == 0.0
    assert throttle.retry_after("b", now=100.0) == 0.0


def test_success_resets_and_silence_forgets() -> None:
    throttle = Throttle(threshold=2, base=1.0, cap=10.0, forget_after=60.0)
    throttle.failure("a", now=0.0)
    throttle.failure("a", now=0.0)
    throttle.success("a")
    assert throttle.retry_after("a", now=0.0) == 0.0 and len(throttle) == 0
    throttle.failure("a", now=0.0)
    assert throttle.failure("a", now=60.0) == 2  # exactly forget_after later: remembered
    assert throttle.failure("a", now=120.5) == 1  # longer: starts over
    throttle.success("nobody")  # no entry: nothing happens
    assert len(throttle) == 1


def test_the_table_drops_the_least_recently_failed() -> None:
    throttle = Throttle(threshold=1, base=1.0, max_entries=2)
    throttle.failure("a", now=0.0)
    throttle.failure("b", now=0.0)
    throttle.failure("a", now=0.0)  # a is now the most recent
    throttle.failure("c", now=0.0)
    assert len(throttle) == 2
    assert throttle.retry_after("b", now=0.0) == 0.0  # dropped
    assert throttle.retry_after("a", now=0.0) > 0 and throttle.retry_after("c", now=0.0) > 0


def test_guesses_from_new_addresses_of_one_ipv6_network_are_slowed_all_the_same() -> None:
    throttle = Throttle(threshold=5, base=0.5, cap=4.0)  # the /64's threshold: 20
    waits = []
    for n in range(1, 23):  # every guess from an address of its own in 2001:db8:1:2::/64
        assert throttle.failure(f"2001:db8:1:2::{n:x}", now=0.0) == 1
        waits.append(throttle.retry_after(f"2001:db8:1:2:ffff::{n:x}", now=0.0))
    assert waits[:19] == [0.0] * 19 and waits[19:] == [0.5, 1.0, 2.0]
    assert throttle.retry_after("2001:db8:1:3::1", now=0.0) == 0.0  # the next /64: its own
    assert throttle.retry_after("192.0.2.1", now=0.0) == 0.0
    throttle.success("2001:db8:1:2::99")  # the right password from the network: it starts over
    assert throttle.retry_after("2001:db8:1:2::1", now=0.0) == 0.0


def test_one_ipv6_address_is_blocked_at_its_own_threshold_and_ipv4_has_no_network() -> None:
    throttle = Throttle(threshold=2, base=1.0, cap=10.0, network_threshold=3)
    throttle.failure("2001:db8::1", now=0.0)
    throttle.failure("2001:db8::1", now=0.0)
    assert throttle.retry_after("2001:db8::1", now=0.0) == 1.0
    assert throttle.retry_after("2001:db8::2", now=0.0) == 0.0  # 2 of the /64's 3
    for n in range(3):  # IPv4 neighbours are separate clients, however many there are
        throttle.failure(f"192.0.2.{n}", now=0.0)
    assert throttle.retry_after("192.0.2.9", now=0.0) == 0.0
    assert throttle.retry_after("::ffff:192.0.2.9", now=0.0) == 0.0


# --- proxies ------------------------------------------------------------------------------


@pytest.mark.parametrize(("trusted", "peer", "forwarded", "client"), [
    ((), "192.0.2.9", "198.51.100.1", "192.0.2.9"),  # nobody trusted: the peer
    (("10.0.0.0/8",), "10.0.0.1", None, "10.0.0.1"),
    (("10.0.0.0/8",), "10.0.0.1", "", "10.0.0.1"),
    (("10.0.0.0/8",), "10.0.0.1", "198.51.100.1", "198.51.100.1"),
    (("10.0.0.0/8",), "10.0.0.1", "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
    (("10.0.0.0/8",), "10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),  # all trusted
    (("10.0.0.0/8",), "10.0.0.1", "6.6.6.6, unknown", "10.0.0.1"),  # garbage stops it
    (("10.0.0.0/8",), "10.0.0.1", "198.51.100.1:4711", "198.51.100.1"),
    (("10.0.0.0/8",), "10.0.0.1", "[2001:db8::1]:443", "2001:db8::1"),
    (("10.0.0.0/8",), "::ffff:10.0.0.1", "198.51.100.1", "198.51.100.1"),  # mapped peer
    (("10.0.0.0/8",), "[::ffff:10.0.0.1]:80", "198.51.100.1", "198.51.100.1"),
    (("10.0.0.0/8",), "not an address", "198.51.100.1", "not an address"),
    (("10.0.0.0/8",), None, "198.51.100.1", "-"),
    (("10.0.0.0/8",), "  ", None, "-"),
    (("2001:db8::/32",), "10.0.0.1", "198.51.100.1", "10.0.0.1"),  # other IP version
    (("10.0.0.0/8",), "192.0.2.9", "198.51.100.1", "192.0.2.9"),  # untrusted peer
])
def test_the_client_behind_proxies(trusted: tuple[str, ...], peer: str | None,
                                   forwarded: str | None, client: str) -> None:
    assert TrustedProxies(trusted).client(peer, forwarded) == client


def test_only_the_last_hops_are_read() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    chain = ["198.51.100.7"] + ["10.0.0.5"] * MAX_HOPS
    assert proxies.client("10.0.0.1", ", ".join(chain)) == "10.0.0.5"
    assert proxies.client("10.0.0.1", ", ".join([*chain[1:], "198.51.100.8"])) == \
        "198.51.100.8"
    assert bool(proxies) and not TrustedProxies()
    assert proxies.trusts_peer("10.1.2.3") and not proxies.trusts_peer("11.0.0.1")
    assert not proxies.trusts_peer("garbage")


def noted(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the proxies' log said (a thread of another test may log meanwhile)."""
    return [r.getMessage() for r in caplog.records if r.name == "appliance.auth.proxies"]


def test_a_proxy_not_named_trusted_is_said_once_and_a_flood_of_them_is_not(
        caplog: pytest.LogCaptureFixture) -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    with caplog.at_level(logging.WARNING, logger="appliance.auth.proxies"):
        for _ in range(3):
            assert proxies.client("::ffff:127.0.0.1", "192.168.1.7") == "127.0.0.1"
        assert proxies.client("10.0.0.1", "192.168.1.7") == "192.168.1.7"  # trusted
        assert proxies.client("192.168.1.2", None) == "192.168.1.2"  # no header
    [said] = noted(caplog)
    assert said.startswith("Requests from 127.0.0.1 carry X-Forwarded-For, but 127.0.0.1 is "
                           "not in YTP_TRUSTED_PROXIES: every client behind it counts as")
    assert said.endswith("set YTP_TRUSTED_PROXIES=127.0.0.1.")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="appliance.auth.proxies"):
        for n in range(2 * MAX_NOTED):
            proxies.client(f"198.51.100.{n}", "192.168.1.7")
    assert len(noted(caplog)) == MAX_NOTED - 1  # one of the first few went to 127.0.0.1


# --- cookies and tickets --------------------------------------------------------------------


def test_a_signed_cookie_verifies_and_any_change_does_not() -> None:
    value = sessions.sign("secret", "sid", 1234)
    assert value.startswith("v1.sid.1234.")
    assert sessions.verify("secret", value) == ("sid", 1234)
    version, sid, expires, mac = value.split(".")
    for bad in (f"v2.{sid}.{expires}.{mac}", f"{version}.other.{expires}.{mac}",
                f"{version}.{sid}.9999.{mac}", f"{version}.{sid}.{expires}.{mac[:-1]}x",
                f"{value}.extra", f"{version}.{sid}.{expires}", ""):
        assert sessions.verify("secret", bad) is None, bad
    assert sessions.verify("other secret", value) is None
    odd = sessions.sign("secret", "sid", 0).replace(".0.", ".zz.")
    assert sessions.verify("secret", odd) is None
    not_a_number = "v1.sid.soon." + sessions._mac("secret", "v1.sid.soon")
    assert sessions.verify("secret", not_a_number) is None


@pytest.mark.parametrize(("header", "values"), [
    (None, []), ("", []),
    ("appliance_session=abc", ["abc"]),
    ('other=1; appliance_session="q"; appliance_session=two', ["q", "two"]),
    ("appliance_session", []),
    (" appliance_session = spaced ", ["spaced"]),
    ("xappliance_session=no", []),
])
def test_cookie_values(header: str | None, values: list[str]) -> None:
    assert sessions.cookie_values(header) == values


def test_tickets_are_single_use_expire_and_are_bounded() -> None:
    tickets = sessions.Tickets(ttl=10.0, limit=2)
    first, expires = tickets.issue(now=100.0)
    assert expires == 110.0
    assert tickets.redeem(first, now=105.0) is True
    assert tickets.redeem(first, now=105.0) is False
    late, _ = tickets.issue(now=100.0)
    assert tickets.redeem(late, now=110.0) is False  # expires is not "still good"
    a, _ = tickets.issue(now=200.0)
    b, _ = tickets.issue(now=200.0)
    c, _ = tickets.issue(now=200.0)  # over the limit: the oldest goes
    assert not tickets.redeem(a, now=200.0)
    assert tickets.redeem(b, now=200.0) and tickets.redeem(c, now=200.0)
    assert tickets.redeem("never issued", now=200.0) is False


def test_expired_tickets_are_pruned_when_new_ones_are_issued() -> None:
    tickets = sessions.Tickets(ttl=10.0, limit=100)
    for _ in range(3):
        tickets.issue(now=0.0)
    keep, _ = tickets.issue(now=5.0)
    tickets.issue(now=10.0)  # the first three expired at 10.0
    assert len(tickets._tickets) == 2
    assert tickets.redeem(keep, now=10.0)


# --- passwords ----------------------------------------------------------------------------


def test_a_hash_is_self_describing_and_verifies() -> None:
    encoded = hash_password("correct horse")
    scheme, n, r, p, salt, key = encoded.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
    assert salt and key and "correct" not in encoded
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horsE", encoded)
    assert hash_password("correct horse") != encoded  # a new salt each time


@pytest.mark.parametrize("mangle", [
    lambda e: "",
    lambda e: e.replace("scrypt$", "bcrypt$"),
    lambda e: e.replace(f"${2**14}$", "$1$"),
    lambda e: e.replace(f"${2**14}$", "$3000$"),  # not a power of two
    lambda e: e.replace(f"${2**14}$", f"${2**21}$"),  # asks for too much memory
    lambda e: e.replace("$8$1$", "$0$1$"),
    lambda e: e.replace("$8$1$", "$8$0$"),
    lambda e: e.replace("$8$1$", "$x$1$"),
    lambda e: e.rsplit("$", 1)[0] + "$",  # no key
    lambda e: e.rsplit("$", 1)[0] + "$!!!",
    lambda e: e + "$extra",
])
def test_a_hash_string_that_cannot_be_read_verifies_nothing(mangle) -> None:
    encoded = hash_password("pw-123456")
    assert verify_password("pw-123456", mangle(encoded)) is False


def test_the_checker_caches_successes_only_for_a_while() -> None:
    now = [0.0]
    checker = PasswordChecker(slots=1, ttl=60.0, limit=1, clock=lambda: now[0])
    encoded = hash_password("pw-123456")
    assert checker.verify("pw-123456", encoded)
    assert not checker.verify("wrong-pass", encoded)
    checker._slots.acquire()  # every slot busy: only a remembered success answers
    try:
        assert checker.verify("pw-123456", encoded)
        with pytest.raises(AppError) as busy:
            checker.verify("wrong-pass", encoded)
        assert busy.value.code == "TOO_MANY_REQUESTS"
        assert busy.value.headers == {"Retry-After": "1"}
        assert busy.value.message == ("The server is busy checking other passwords; try "
                                      "again in a second.")
        now[0] = 60.0  # remembered for less than ttl
        with pytest.raises(AppError):
            checker.verify("pw-123456", encoded)
    finally:
        checker._slots.release()


def test_the_checker_remembers_at_most_limit() -> None:
    checker = PasswordChecker(slots=1, ttl=60.0, limit=1)
    one, two = hash_password("first-pass"), hash_password("second-pass")
    assert checker.verify("first-pass", one) and checker.verify("second-pass", two)
    assert len(checker._verified) == 1
    checker._slots.acquire()
    try:
        assert checker.verify("second-pass", two)  # the newest is kept
        with pytest.raises(AppError):
            checker.verify("first-pass", one)
    finally:
        checker._slots.release()


# --- browsers -----------------------------------------------------------------------------

POLICY = BrowserPolicy(["https://ui.example/", "HTTP://Other.example:8080"], http_port=8081)


def _headers(**values: str):
    named = {k.replace("_", "-").lower(): v for k, v in values.items()}
    return lambda name: named.get(name.lower())


@pytest.mark.parametrize(("headers", "allowed"), [
    ({}, True),  # not a browser
    ({"Origin": "https://evil.example"}, False),
    ({"Origin": "https://evil.example", "Sec_Fetch_Site": "same-origin"}, True),
    ({"Origin": "https://evil.example", "Sec_Fetch_Site": "cross-site"}, False),
    ({"Origin": "https://ui.example"}, True),
    ({"Origin": "https://UI.example/"}, True),
    ({"Origin": "http://other.example:8080"}, True),
    ({"Origin": "http://other.example"}, False),
    ({"Origin": "http://box:8081", "Host": "box:8081"}, True),
    ({"Origin": "http://box:8081", "Host": "box:8082"}, True),  # the HTTP port, from the ws
    ({"Origin": "http://box:9000", "Host": "box:8082"}, False),
    ({"Origin": "http://BOX", "Host": "box:80"}, True),
    ({"Origin": "https://box", "Host": "box"}, True),  # 443 both
    ({"Origin": "https://box", "Host": "box:80"}, False),
    ({"Origin": "http://box:8081", "Host": "other:8081"}, False),
    ({"Origin": "http://box:8081"}, False),  # no Host
    ({"Origin": "null", "Host": "box"}, False),
    ({"Origin": "http://box/path", "Host": "box"}, False),
    ({"Origin": "http://box?q", "Host": "box"}, False),
    ({"Origin": "http://u@box", "Host": "box"}, False),
    ({"Origin": "ftp://box", "Host": "box"}, False),
    ({"Origin": "http://box:99999", "Host": "box"}, False),
    ({"Origin": "http://box", "Host": "box:99999"}, False),
    ({"Origin": "http://box", "Host": "u@box"}, False),
    ({"Origin": "http://box", "Host": "box/x"}, False),
])
def test_which_pages_may_change_something(headers: dict[str, str], allowed: bool) -> None:
    refusal = POLICY.origin_refusal(_headers(**headers))
    assert (refusal is None) == allowed, refusal
    if refusal:
        assert "YTP_CORS_ORIGINS" in refusal and headers["Origin"][:200] in refusal


@pytest.mark.parametrize(("headers", "allowed", "says"), [
    ({}, True, None),
    ({"Sec_Fetch_Site": "same-origin", "Sec_Fetch_Mode": "cors"}, True, None),
    ({"Sec_Fetch_Site": "cross-site", "Sec_Fetch_Mode": "cors", "Origin": "https://ui.example"},
     True, None),
    ({"Sec_Fetch_Site": "none", "Sec_Fetch_Mode": "navigate", "Sec_Fetch_Dest": "document"},
     True, None),
    ({"Sec_Fetch_Site": "cross-site", "Sec_Fetch_Mode": "navigate",
      "Sec_Fetch_Dest": "document", "Sec_Fetch_User": "?1"}, True, None),
    ({"Sec_Fetch_Site": "cross-site", "Sec_Fetch_Mode": "navigate"}, False, "without a click"),
    ({"Sec_Fetch_Site": "cross-site", "Sec_Fetch_Mode": "navigate",
      "Sec_Fetch_Dest": "document"}, False, "without a click"),
    ({"Sec_Fetch_Site": "cross-site", "Sec_Fetch_Mode": "no-cors",
      "Sec_Fetch_Dest": "image"}, False, "as a image request"),
    ({"Sec_Fetch_Site": "cross-site", "Sec_Fetch_Mode": "cors", "Sec_Fetch_Dest": "empty"},
     False, "as a cors-mode request"),
    ({"Sec_Fetch_Site": "cross-site"}, False, "as a unknown-mode request"),
    ({"Sec_Fetch_Site": "cross-site", "Sec_Fetch_Mode": "navigate",
      "Sec_Fetch_Dest": "iframe", "Sec_Fetch_User": "?1"}, False, "as a iframe request"),
])
def test_which_quick_adds_are_refused(headers: dict[str, str], allowed: bool,
                                      says: str | None) -> None:
    refusal = POLICY.quick_add_refusal(_headers(**headers))
    assert (refusal is None) == allowed
    if says:
        assert says in refusal


def test_listed_origins_are_compared_without_case_or_trailing_slash() -> None:
    assert POLICY.listed(" https://UI.example/ ") and not POLICY.listed(None)
    assert not POLICY.listed("https://ui.example.evil")


# --- the authenticator ------------------------------------------------------------------------


def _authenticator(tmp_path: Path, **env: str) -> Authenticator:
    return Authenticator(make_settings(tmp_path, **env))


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_each_credential_names_how_it_was_given(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    token = gen_token(auth.settings.current.config_path)
    assert auth.authenticate(address="a", authorization=_basic("u", "pw-123456")) == \
        Identity("u", "basic")
    key = base64.urlsafe_b64encode(b"u:pw-123456").decode()
    assert auth.authenticate(address="a", query={"apikey": key}) == Identity("u", "apikey")
    assert auth.authenticate(address="a", authorization=f"Token {token}") == \
        Identity("appliance", "token")
    session = auth.login("u", "pw-123456", address="a", remember=False)
    session_id = session.cookie.split(".")[1]
    assert auth.authenticate(address="a", cookie=f"{COOKIE_NAME}={session.cookie}") == \
        Identity("session", "session", session_id)


def test_an_apikey_whose_plus_became_a_space_still_works(tmp_path: Path) -> None:
    password = "pw>>>>>~~"  # "u:pw>>>>>~~" in standard base64 has a "+" (and no "/")
    assert "+" in base64.b64encode(f"u:{password}".encode()).decode()
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD=password)
    key = base64.b64encode(f"u:{password}".encode()).decode()
    assert auth.authenticate(address="a", query=f"apikey={key}") == Identity("u", "apikey")


@pytest.mark.parametrize(("authorization", "kind"), [
    ("Token wrong", "token"), (_basic("u", "nope-nope"), "basic"), ("Bearer x", "unreadable"),
])
def test_failures_are_logged_by_kind(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                     authorization: str, kind: str) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    with pytest.raises(AppError) as caught:
        auth.authenticate(address="203.0.113.5", authorization=authorization)
    assert caught.value.code == "UNAUTHORIZED"
    assert f"authentication failed from 203.0.113.5: invalid credentials ({kind}) " \
           f"(failure 1)" in caplog.text


def test_logout_says_whether_a_session_ended(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    assert auth.logout(f"{COOKIE_NAME}=v1.x.1.y") is False  # no secret yet: nothing to end
    session = auth.login("u", "pw-123456", address="a", remember=True)
    cookie = f"{COOKIE_NAME}={session.cookie}"
    assert auth.logout(cookie) is True
    assert auth.logout(cookie) is False
    with pytest.raises(AppError):
        auth.authenticate(address="a", cookie=cookie)


def test_a_session_store_that_cannot_be_written_is_a_503(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    auth.file.path.mkdir(parents=True)  # the auth file's name is taken by a folder
    with pytest.raises(AppError) as caught:
        auth.login("u", "pw-123456", address="a", remember=False)
    assert caught.value.code == "UNAVAILABLE"
    assert caught.value.message == "The session store cannot be written; see the server log."
    assert f"cannot update {auth.file.path}: " in caplog.text


def test_quick_add_refusals_say_what_to_do() -> None:
    loaded = POLICY.quick_add_refusal(_headers(Sec_Fetch_Site="cross-site",
                                               Sec_Fetch_Mode="no-cors", Sec_Fetch_Dest="script"))
    assert loaded == ("Refused: another page loaded this URL as a script request. It adds to "
                      "the queue only when a person opens it (a link, a bookmark or a "
                      "bookmarklet) or a program that is not a browser calls it.")
    pushed = POLICY.quick_add_refusal(_headers(Sec_Fetch_Site="cross-site",
                                               Sec_Fetch_Mode="navigate"))
    assert pushed == ("Refused: another page navigated here without a click. It adds to the "
                      "queue only when a person opens it (a link, a bookmark or a bookmarklet).")


def test_describe_names_every_source(tmp_path: Path) -> None:
    assert _authenticator(tmp_path / "open").describe() == "none"
    auth = _authenticator(tmp_path / "env", YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    assert auth.describe() == "YTP_AUTH_USERNAME/YTP_AUTH_PASSWORD"
    set_password(auth.settings.current.config_path, "web-pass-1")
    assert auth.describe() == ("YTP_AUTH_USERNAME/YTP_AUTH_PASSWORD and web passwd "
                               f"({auth.file.path})")
    broken = _authenticator(tmp_path / "broken")
    broken.file.folder.mkdir(parents=True)
    broken.file.path.write_text("{not json")
    assert broken.describe() == f"unreadable {broken.file.path} (nothing accepted from it)"


def test_an_open_service_names_everyone_anonymous(tmp_path: Path) -> None:
    assert _authenticator(tmp_path).authenticate(address="a") == Identity("anonymous", "open")


def test_a_blocked_address_is_told_when_to_come_back(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    for _ in range(5):
        with pytest.raises(AppError):
            auth.authenticate(address="b", authorization="Token wrong")
    with pytest.raises(AppError) as blocked:
        auth.authenticate(address="b", authorization=_basic("u", "pw-123456"))
    assert blocked.value.code == "TOO_MANY_REQUESTS"
    assert blocked.value.message == "Too many failed attempts; try again later."
    assert blocked.value.headers == {"Retry-After": "1"}


def test_a_login_clears_the_addresss_failures_and_is_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="appliance.auth")
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    for _ in range(4):
        with pytest.raises(AppError):
            auth.login("u", "wrong-pass", address="c", remember=False)
    auth.login("u", "pw-123456", address="c", remember=True)
    assert "login from c as u (remembered)" in caplog.text
    assert auth.throttle.retry_after("c", now=auth.clock()) == 0.0 and len(auth.throttle) == 0


def test_the_auth_file_says_when_it_is_reloaded_or_refused(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="appliance.auth")
    auth = _authenticator(tmp_path)
    config = auth.settings.current.config_path
    set_password(config, "web-pass-1")
    assert auth.state().password is not None  # first read: nothing said
    assert "reloaded" not in caplog.text
    gen_token(config)
    assert auth.state().token is not None
    assert f"{auth.file.path} changed; reloaded" in caplog.text
    auth.file.path.write_text("[]")
    assert auth.state().broken
    assert f"{auth.file.path}: cannot read: " in caplog.text
    assert "refusing every credential from it until it is fixed (appliance web passwd " \
           "rewrites it)" in caplog.text


def test_what_a_foreign_page_is_told() -> None:
    assert POLICY.origin_refusal(_headers(Origin="https://evil.example")) == (
        "Requests from pages on https://evil.example are refused: only the service's own "
        "pages and the origins listed in YTP_CORS_ORIGINS may send them.")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "Authentication required."),
    ({"query": "apikey="}, "Invalid credentials."),  # an empty key is a wrong key
    ({"authorization": "Token  wrong"}, "Invalid credentials."),
])
def test_401s_name_the_realm_and_the_reason(tmp_path: Path, kwargs: dict, message: str) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    with pytest.raises(AppError) as caught:
        auth.authenticate(address="a", **kwargs)
    assert (caught.value.code, caught.value.message) == ("UNAUTHORIZED", message)
    assert caught.value.headers == {"WWW-Authenticate": 'Basic realm="appliance", '
                                                        'charset="UTF-8"'}


def test_credentials_in_every_form_a_client_sends_them(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    token = gen_token(auth.settings.current.config_path)
    key = base64.urlsafe_b64encode(b"u:pw-123456").decode()
    assert auth.authenticate(address="a", query={"apikey": [key]}).method == "apikey"
    assert auth.authenticate(address="a", authorization=f"Token  {token}").method == "token"


def test_logout_before_any_login_ends_nothing(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path)
    set_password(auth.settings.current.config_path, "web-pass-1")  # no secret until a login
    assert auth.logout(f"{COOKIE_NAME}=v1.x.1.y") is False


def test_log_lines_are_whole(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="appliance.auth")
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    auth.login("u", "pw-123456", address="d", remember=False)
    assert "login from d as u (browser session)" in [r.getMessage() for r in caplog.records]
    auth.file.path.unlink()
    auth.file.path.mkdir()
    with pytest.raises(AppError):
        auth.login("u", "pw-123456", address="d", remember=False)
    [line] = [r.getMessage() for r in caplog.records if "cannot update" in r.getMessage()]
    assert line.startswith(f"cannot update {auth.file.path}: ") and "Is a directory" in line


def test_a_right_credential_carries_no_wrong_one_in(tmp_path: Path) -> None:
    """Passwords sent beside a right token (or a right one beside another) are guesses: the
    request is refused and counted, as any wrong password is. Unrefused, a token's holder
    could try the password three a request, the throttle never counting them (and an open
    socket again at each change of the credentials)."""
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    token = gen_token(auth.settings.current.config_path)
    right = base64.urlsafe_b64encode(b"u:pw-123456").decode()
    guesses = [base64.urlsafe_b64encode(f"u:guess-{n}".encode()).decode() for n in range(3)]
    # every one right: let in, by the first
    assert auth.authenticate(address="a", authorization=f"Token {token}",
                             query={"apikey": [right, right]}) == Identity("u", "apikey")
    for address, how in (("b", {"authorization": f"Token {token}"}),
                         ("c", {"authorization": _basic("u", "pw-123456")}),
                         ("d", {"query": {"apikey": [right]}})):
        extra = {"query": {"apikey": [*how.get("query", {}).get("apikey", []), *guesses]}}
        with pytest.raises(AppError) as caught:
            auth.authenticate(address=address, **{**how, **extra})
        assert (caught.value.code, caught.value.message) == ("UNAUTHORIZED",
                                                             "Invalid credentials.")
    # a wrong one before the right one as well
    with pytest.raises(AppError):
        auth.authenticate(address="f", query={"apikey": [guesses[0], right]})
    # and asked again for an open socket (no guess: not counted, still refused)
    with pytest.raises(AppError):
        auth.authenticate(address="e", authorization=f"Token {token}",
                          query={"apikey": guesses}, guess=False)
    # counted as failures: the address is blocked in the end, its right token included
    for _ in range(4):
        with pytest.raises(AppError):
            auth.authenticate(address="b", authorization=f"Token {token}",
                              query={"apikey": guesses[:1]})
    with pytest.raises(AppError) as blocked:
        auth.authenticate(address="b", authorization=f"Token {token}")
    assert blocked.value.code == "TOO_MANY_REQUESTS"


@pytest.mark.parametrize("via", ["login", "basic"])
def test_a_wrong_user_name_is_answered_as_a_right_one_is(tmp_path: Path, via: str) -> None:
    """With both the YTP credentials and a `web passwd` password, a known user name (the YTP
    one) had its password hashed and an unknown one did not: sooner answered, and, with every
    hashing slot busy (a guesser's own flood does that), 401 where the known name was 429.
    Either told a stranger the YTP user name, half of what the throttle guards."""
    settings = make_settings(tmp_path, YTP_AUTH_USERNAME="u-secret", YTP_AUTH_PASSWORD="pw-123456")
    set_password(settings.config_path, "web-pass-1")
    auth = Authenticator(settings, checker=PasswordChecker(slots=0))  # every slot busy

    def answer(user: str) -> str:
        with pytest.raises(AppError) as caught:
            if via == "login":
                auth.login(user, "wrong-pass", address=user, remember=False)
            else:
                auth.authenticate(address=user, authorization=_basic(user, "wrong-pass"))
        return caught.value.code

    assert answer("u-secret") == "TOO_MANY_REQUESTS"  # its password is hashed: no slot
    assert answer("appliance") == "TOO_MANY_REQUESTS"
    assert answer("u-guess") == "TOO_MANY_REQUESTS"  # hashed all the same


def test_the_right_password_under_an_unknown_name_is_refused(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    set_password(auth.settings.current.config_path, "web-pass-1")
    for user, password in [("stranger", "web-pass-1"), ("stranger", "pw-123456"),
                           ("u", "web-pass-1x"), ("appliance", "pw-123456")]:
        with pytest.raises(AppError) as caught:
            auth.authenticate(address="a", authorization=_basic(user, password))
        assert caught.value.code == "UNAUTHORIZED", (user, password)
    assert auth.authenticate(address="a", authorization=_basic("u", "web-pass-1")) == \
        Identity("u", "basic")
    assert auth.authenticate(address="a", authorization=_basic("appliance", "web-pass-1")) == \
        Identity("appliance", "basic")


def test_a_session_whose_expiry_is_no_time_is_dropped_not_a_500(tmp_path: Path) -> None:
    """A hand-edited or damaged auth file: an expiry too large for a float raised
    OverflowError (not the ValueError the reader catches: a 500 on every request), and one of
    Infinity or NaN kept its session for ever (NaN is never past)."""
    auth = _authenticator(tmp_path)
    config = auth.settings.current.config_path
    set_password(config, "web-pass-1")
    data = json.loads(auth.file.path.read_text())
    data["sessions"] = {"huge": 10**400, "inf": float("inf"), "nan": float("nan"), "ok": 2e9}
    auth.file.path.write_text(json.dumps(data))
    state = auth.state()
    assert not state.broken and dict(state.sessions) == {"ok": 2e9}
    assert auth.authenticate(address="a", authorization=_basic("appliance", "web-pass-1")) == \
        Identity("appliance", "basic")


def test_a_file_ticket_opens_its_file_only_until_it_expires(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="appliance.auth")
    now = [1_000_000.0]
    auth = Authenticator(make_settings(tmp_path, YTP_AUTH_USERNAME="u",
                                       YTP_AUTH_PASSWORD="pw-123456"), clock=lambda: now[0])
    ticket, expires = auth.issue_file_ticket("shows/a.mp4")
    assert expires == now[0] + sessions.FILE_TICKET_SECONDS
    ws_ticket, _ = auth.issue_ticket()

    def code(value: str, scope: str | None = "shows/a.mp4", **kwargs: object) -> str:
        file_scope = None if scope is None else (lambda: scope)
        try:
            auth.authenticate(address="a", query={"ticket": value}, file_scope=file_scope,
                              **kwargs)  # type: ignore[arg-type]
        except AppError as exc:
            return exc.code
        return "OK"

    def unasked() -> str:
        raise AssertionError("the path is resolved only for a live file ticket")

    assert code(ticket) == "OK" and code(ticket) == "OK"  # as often as the player likes
    assert auth.authenticate(address="a", query={"ticket": ticket},
                             file_scope=lambda: "shows/a.mp4") == Identity("ticket", "ticket")
    assert code(ticket, "shows/b.mp4") == "FORBIDDEN"
    assert "file ticket from a is for another file" in caplog.text
    assert code("made-up") == "UNAUTHORIZED"
    with pytest.raises(AppError) as made_up:
        auth.authenticate(address="a", query={"ticket": "made-up"}, file_scope=unasked)
    assert made_up.value.message == "The ticket is unknown, already used or expired."
    assert "ticket from a is unknown, used or expired" in caplog.text
    assert code(ticket, None, allow_ticket=True) == "UNAUTHORIZED"  # not a websocket's
    assert code(ws_ticket) == "UNAUTHORIZED"  # a websocket's does not open a file
    assert code(ws_ticket, None, allow_ticket=True) == "OK"
    now[0] = expires - 0.5
    assert code(ticket) == "OK"
    now[0] = expires
    assert code(ticket) == "UNAUTHORIZED"


def test_an_apikey_in_url_safe_base64_is_taken(tmp_path: Path) -> None:
    password = "pw>>>?????"  # "u:pw>>>?????" in URL-safe base64 has "-" and "_"
    key = base64.urlsafe_b64encode(f"u:{password}".encode()).decode()
    assert "-" in key and "_" in key
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD=password)
    assert auth.authenticate(address="a", query={"apikey": key}) == Identity("u", "apikey")


def test_several_right_credentials_are_named_by_the_first(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    key = base64.urlsafe_b64encode(b"u:pw-123456").decode()
    assert auth.authenticate(address="a", authorization=_basic("u", "pw-123456"),
                             query={"apikey": [key, key]}) == Identity("u", "basic")


def test_new_ytp_credentials_end_the_login_sessions(tmp_path: Path) -> None:
    now = 1_000_000.0
    first = Authenticator(make_settings(tmp_path, YTP_AUTH_USERNAME="u",
                                        YTP_AUTH_PASSWORD="pw-123456"), clock=lambda: now)
    session = first.login("u", "pw-123456", address="a", remember=True)
    assert session.expires == int(now) + sessions.REMEMBER_SECONDS
    assert session.max_age == sessions.REMEMBER_SECONDS
    assert first.login("u", "pw-123456", address="a", remember=False).expires == \
        int(now) + sessions.BROWSER_SECONDS
    cookie = f"{COOKIE_NAME}={session.cookie}"
    assert first.authenticate(address="a", cookie=cookie).method == "session"
    for env in ({"YTP_AUTH_PASSWORD": "pw-654321"}, {"YTP_AUTH_USERNAME": "v"}):
        changed = Authenticator(make_settings(tmp_path, **{
            "YTP_AUTH_USERNAME": "u", "YTP_AUTH_PASSWORD": "pw-123456", **env}),
            clock=lambda: now)
        with pytest.raises(AppError) as caught:
            changed.authenticate(address="a", cookie=cookie)
        assert caught.value.message == "The session has expired or was ended; log in again."


def test_a_right_token_does_not_forgive_password_guesses(tmp_path: Path) -> None:
    now = 1_000_000.0
    auth = Authenticator(make_settings(tmp_path), clock=lambda: now)
    set_password(auth.settings.current.config_path, "web-pass-1")
    token = gen_token(auth.settings.current.config_path)

    def guess(address: str, password: str) -> str:
        try:
            auth.authenticate(address=address, authorization=_basic("appliance", password))
        except AppError as exc:
            return exc.code
        return "OK"

    for n in range(4):
        assert guess("a", f"guess-{n}") == "UNAUTHORIZED"
        assert auth.authenticate(address="a", authorization=f"Token {token}").method == "token"
    assert guess("a", "guess-4") == "UNAUTHORIZED"  # the fifth failure: blocked from here on
    assert guess("a", "guess-5") == "TOO_MANY_REQUESTS"
    # the right password does forgive a person's typos
    for n in range(4):
        assert guess("b", f"typo-{n}") == "UNAUTHORIZED"
    assert guess("b", "web-pass-1") == "OK"
    assert [guess("b", f"typo-{n}") for n in range(5)] == ["UNAUTHORIZED"] * 5


def test_a_hash_stored_years_ago_still_verifies_and_one_past_the_memory_bound_never() -> None:
    # Written by this code once and kept: the service runs for years on one auth file, so
    # the format (salt, key length, padding) must read the same for as long.
    stored = "scrypt$16384$8$1$J8vP6ULoUGV8S2oRUcPEJg$Pr8WLom5doaVbXH8msO2Uyf_f6mcj-Uik2V4BGSAtqE"
    assert verify_password("kept-for-years", stored)
    assert not verify_password("kept-for-years!", stored)
    # n = 2**20 with r = 8 needs 1 GiB, past the bound: scrypt refuses, and so does verify
    salt_and_key = stored.split("$", 4)[4]
    assert not verify_password("kept-for-years", f"scrypt$1048576$8$1${salt_and_key}")


def test_an_unreadable_auth_file_is_said_and_rewritten_by_web_passwd(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    auth = _authenticator(tmp_path)
    config = auth.settings.current.config_path
    set_password(config, "web-pass-1")
    auth.file.path.write_text("[]")
    assert auth.state().broken
    assert f"{auth.file.path}: cannot read: top level is not an object" in caplog.text
    set_password(config, "web-pass-2")
    assert f"{auth.file.path} was unreadable (top level is not an object); rewriting it" \
        in caplog.text
    assert not auth.state().broken


def test_a_rewritten_auth_file_is_always_newer_than_the_old(tmp_path: Path) -> None:
    # A coarse clock (or one set back) could give the new file the old one's mtime, and with
    # a reused inode the service would keep the old state: the rewrite is made newer.
    auth = _authenticator(tmp_path)
    config = auth.settings.current.config_path
    set_password(config, "web-pass-1")
    future = os.stat(auth.file.path).st_mtime_ns + 10**12  # some 17 minutes ahead
    os.utime(auth.file.path, ns=(future, future))
    gen_token(config)
    assert os.stat(auth.file.path).st_mtime_ns == future + 1
