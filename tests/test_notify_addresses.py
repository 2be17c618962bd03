"""Where a notification may connect. A target's URL is whatever an API client wrote: the LAN
and this machine are a home server's own targets and stay allowed, but the cloud's metadata
service (which hands out the machine's credentials), link-local, unspecified and multicast
addresses are refused — when the URL is saved if it names one, and when a webhook connects
if its host resolves to one (the connection goes to the address that was checked).

Nothing here connects anywhere but 127.0.0.1: the refused addresses are refused before a
connection is tried. A host that is a name is checked on the addresses it resolves to; no DNS
server answers here, so one name's lookup is answered as a hostile server would: 0.0.0.0,
which Linux connects to this machine (the old sender reached the local receiver through it).
Its number forms (``0``, ``2852039166``) are refused as they are saved, as addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import client_of_module
from falcon.testing import TestClient
from support.server import wait_for
from support.webhooks import Receiver, post, target

from appliance.api.app import create_app
from appliance.notify.messages import Message
from appliance.notify.senders import Outcome, send_apprise, send_webhook
from appliance.outbound import proxied, why_refused
from appliance.runtime import Runtime

DISGUISED = "disguised.test"
REFUSED = (f"Cannot send: {DISGUISED} is 0.0.0.0, the unspecified address: notifications may "
           "not go there.")


@pytest.fixture(autouse=True)
def _hostile_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real("0.0.0.0" if host == DISGUISED else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from client_of_module(tmp_path_factory, "refusing")


@pytest.fixture(name="receiver")
def _receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.mark.parametrize(("address", "reason"), [
    ("169.254.169.254", "a link-local or cloud metadata address"),
    ("::ffff:169.254.169.254", "a link-local or cloud metadata address"),
    ("64:ff9b::a9fe:a9fe", "a link-local or cloud metadata address"),  # NAT64
    ("2002:a9fe:a9fe::1", "a link-local or cloud metadata address"),  # 6to4
    ("fe80::1", "a link-local or cloud metadata address"),
    ("fd00:ec2::254", "a link-local or cloud metadata address"),
    ("100.100.100.200", "a link-local or cloud metadata address"),
    ("0.0.0.0", "the unspecified address"),
    ("::", "the unspecified address"),
    ("224.0.0.251", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("127.0.0.1", None), ("::1", None), ("192.168.1.20", None), ("10.0.0.2", None),
    ("fd12:3456::1", None), ("100.64.0.1", None), ("93.184.216.34", None),
    ("2606:2800:220:1::1", None),
])
def test_which_addresses_are_refused(address: str, reason: str | None) -> None:
    assert why_refused(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",
    "https://[::ffff:169.254.169.254]/",
    "http://[fe80::1%25eth0]:8080/",
    "http://0.0.0.0:8123/api/webhook/x",
    "json://169.254.169.254/hook",  # Apprise connects there itself
    # The C library's other forms of 169.254.169.254 and 0.0.0.0, as a connection reads them
    "json://2852039166/hook", "http://0xa9.0xfe.0xa9.0xfe/", "http://0251.0376.0251.0376/",
    "http://169.254.43518/", "http://0/", "http://0x0:8123/",
])
def test_a_url_naming_a_refused_address_is_not_saved(refusing: TestClient, url: str) -> None:
    response = post(refusing, "/api/notifications", {"name": "a", "request": {"url": url}})
    assert response.status_code == 400, response.text
    assert response.json["error"].startswith("request.url: its host ")
    assert response.json["error"].endswith(", where notifications may not go.")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost:9/x",
                                 "http://192.168.1.20:8123/api/webhook/abc",
                                 "http://[::1]:9/x", "json://10.0.0.2/x",
                                 "http://127.1:9/x", "http://2130706433:9/x"])
def test_this_machine_and_the_lan_are_allowed(client: TestClient, url: str) -> None:
    response = post(client, "/api/notifications",
                    {"name": "a", "enabled": False, "request": {"url": url}})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("scheme", ["http", "https"])  # (https: refused before any TLS)
def test_a_host_resolving_to_a_refused_address_is_not_connected_to(
        receiver: Receiver, scheme: str) -> None:
    port = receiver.server.server_address[1]
    request = {"url": f"{scheme}://{DISGUISED}:{port}/x", "type": "json", "method": "POST",
               "data_key": "data", "headers": []}
    assert send_webhook(request, {"event": "test"}, 5) == Outcome(
        False, None, REFUSED)
    assert receiver.to("/x") == []
    # The same receiver by an allowed name is reached (the check is no blanket refusal).
    allowed = {**request, "url": f"http://localhost:{port}/x"}
    assert send_webhook(allowed, {"event": "test"}, 5) == Outcome(True, 200)


def test_a_lane_refuses_it_once_and_records_why(
        receiver: Receiver, start_runtime: Callable[..., Runtime]) -> None:
    service = start_runtime(YTP_NOTIFY_RETRIES="3", YTP_NOTIFY_RETRY_DELAY="0.05")
    client = TestClient(create_app(service))
    port = receiver.server.server_address[1]
    hook = target(client, "disguised", f"http://{DISGUISED}:{port}/x", on=["paused"])
    assert client.simulate_post("/api/system/pause").status_code == 200
    row = wait_for(lambda: (t := service.notifications.get(hook["id"]))["last_status"] and t,
                   message="the refusal recorded")
    assert row["last_status"] == "failed"
    assert row["last_error"] == REFUSED  # no retries either
    assert receiver.to("/x") == []


def test_a_proxy_does_not_carry_a_webhook_past_the_check(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """With HTTP_PROXY set (requests follows it), the connection goes to the proxy, which
    resolves the webhook's host itself: the host is checked here first, as without one. The
    receiver stands for the proxy: it would get ``POST http://disguised.test:PORT/x``."""
    port = receiver.server.server_address[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    request = {"url": f"http://{DISGUISED}:{port}/x", "type": "json", "method": "POST",
               "data_key": "data", "headers": []}
    assert send_webhook(request, {"event": "test"}, 5) == Outcome(
        False, None, REFUSED)
    assert receiver.hits == []
    # Through the proxy as before otherwise; a name this machine cannot resolve is the
    # proxy's to resolve (a network where only the proxy reaches out).
    for host in (f"localhost:{port}", "hooks.invalid"):
        allowed = {**request, "url": f"http://{host}/hook"}
        assert send_webhook(allowed, {"event": "test"}, 5) == Outcome(True, 200)
    assert [hit.path for hit in receiver.hits] == [f"http://localhost:{port}/hook",
                                                   "http://hooks.invalid/hook"]


def test_a_proxy_does_not_carry_an_apprise_message_past_the_check(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Apprise's plugins follow HTTP_PROXY too: the connection is the proxy's (allowed), and
    the proxy would resolve the name and reach this machine's receiver for it."""
    port = receiver.server.server_address[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert send_apprise(f"json://{DISGUISED}:{port}/x", Message("t", "b"), 5) == Outcome(
        False, None, REFUSED)
    assert receiver.hits == []
    # Through the proxy as before otherwise, a name this machine cannot resolve included.
    for host in (f"localhost:{port}", "hooks.invalid"):
        assert send_apprise(f"json://{host}/hook", Message("t", "b"), 5).ok
    assert [hit.path for hit in receiver.hits] == [f"http://localhost:{port}/hook",
                                                   "http://hooks.invalid/hook"]
    # NO_PROXY: the connection is made here, to the address resolved, judged on connecting
    monkeypatch.setenv("NO_PROXY", DISGUISED)
    assert send_apprise(f"json://{DISGUISED}:{port}/x", Message("t", "b"), 5).error == (
        "Cannot send: 0.0.0.0 is the unspecified address: notifications may not go there.")
    assert len(receiver.hits) == 2


@pytest.mark.parametrize(("no_proxy", "host", "through_proxy"), [
    ("", "hooks.example", True),
    ("10.0.0.0/8", "10.1.2.3", False),  # a range: urllib's reading took it for no exception
    ("10.0.0.0/8", "192.168.1.2", True),
    ("example.org", "hooks.example.org", False),
    ("", "", False),
])
def test_which_hosts_go_through_the_proxy_is_read_as_requests_reads_it(
        monkeypatch: pytest.MonkeyPatch, no_proxy: str, host: str, through_proxy: bool) -> None:
    """Apprise sends with requests: a host requests sends directly is judged on connecting,
    one it sends to the proxy is checked before (the proxy resolves it)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy",
                 "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert proxied(host) is through_proxy


def test_a_datagram_is_held_to_the_check_too() -> None:
    """``rsyslog://`` sends a UDP datagram, with no connect: it reached the metadata address
    (by number or by a name) as any other would have been refused. A UDP receiver on this
    machine is reached (the check is no blanket refusal)."""
    message = Message("Downloaded: Clip", "Downloaded: Clip")
    assert send_apprise("rsyslog://2852039166", message, 5) == Outcome(
        False, None, "Cannot send: 2852039166 is 169.254.169.254, a link-local or cloud "
                     "metadata address: notifications may not go there.")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as syslog:
        syslog.bind(("127.0.0.1", 0))
        syslog.settimeout(5)
        port = syslog.getsockname()[1]
        assert send_apprise(f"rsyslog://127.0.0.1:{port}", message, 5) == Outcome(True)
        assert b"Downloaded: Clip" in syslog.recv(65536)
