"""The rules authentication decides by, each on its own and table-driven: the guessing
throttle, who the client is behind proxies, signed cookies and tickets, password hashes, the
bounded password checker and what a browser page may do."""

from __future__ import annotations

import logging

import pytest

from appliance.auth import (
    sessions,
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


def test_guesses_from_new_networks_of_one_ipv6_site_are_slowed_all_the_same() -> None:
    """A /48 holds 65,536 /64s: a guesser taking a new one for every guess was never slowed."""
    throttle = Throttle(threshold=5, base=0.5, cap=4.0)  # the /48's threshold: 80
    waits = []
    for n in range(1, 83):  # every guess from a /64 of its own in 2001:db8:1::/48
        assert throttle.failure(f"2001:db8:1:{n:x}::1", now=0.0) == 1
        waits.append(throttle.retry_after(f"2001:db8:1:ffff::{n:x}", now=0.0))
    assert waits[:79] == [0.0] * 79 and waits[79:] == [0.5, 1.0, 2.0]
    assert throttle.retry_after("2001:db8:2::1", now=0.0) == 0.0  # the next /48: its own
    throttle.success("2001:db8:1:5::9")  # the right password from the site: it starts over
    assert throttle.retry_after("2001:db8:1:ffff::1", now=0.0) == 0.0


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
    ('appliance_session="XabcX"', ["XabcX"]),  # only the quotes go (an id may hold any X)
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


def test_what_a_foreign_page_is_told() -> None:
    assert POLICY.origin_refusal(_headers(Origin="https://evil.example")) == (
        "Requests from pages on https://evil.example are refused: only the service's own "
        "pages and the origins listed in YTP_CORS_ORIGINS may send them.")


def test_the_throttles_defaults() -> None:
    """Silence of 15 minutes forgets (not a second more), and a given site threshold holds."""
    throttle = Throttle()
    assert (throttle.threshold, throttle.network_threshold, throttle.site_threshold) == (5, 20, 80)
    throttle.failure("a", now=0.0)
    assert throttle.failure("a", now=900.0) == 2
    assert throttle.failure("a", now=1800.5) == 1
    assert Throttle(site_threshold=7).site_threshold == 7
    assert Throttle(network_threshold=3).site_threshold == 12
