"""The service's identity (instance id) and its zeroconf announcement, as Home Assistant
sees them: the id is the same across restarts and in both places a client reads it, and a
real zeroconf browser on loopback finds the running service and sees it leave."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import falcon.testing
import pytest
from conftest import make_settings
from support.server import Server, wait_for
from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceListener, Zeroconf
from zeroconf import _core as zeroconf_core

from appliance import __version__, discovery
from appliance.api.app import create_app
from appliance.config import Settings
from appliance.discovery import (
    MAX_LABEL,
    MAX_TXT,
    SERVICE_TYPE,
    Announcer,
    local_addresses,
    service_info,
)
from appliance.instance import ID_NAME
from appliance.runtime import Runtime


def _ids(client: falcon.testing.TestClient) -> tuple[str, str]:
    health = client.simulate_get("/api/health").json
    config = client.simulate_get("/api/system/configuration").json
    return health["instance_id"], config["app"]["instance_id"]


def test_instance_id_is_kept_across_restarts(
    start_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    first = start_runtime()
    health_id, config_id = _ids(falcon.testing.TestClient(create_app(first)))
    assert health_id == config_id
    assert len(health_id) == 32 and int(health_id, 16) >= 0
    first.stop()

    again = start_runtime()
    assert _ids(falcon.testing.TestClient(create_app(again))) == (health_id, health_id)
    again.stop()

    # A file that no longer holds an id is replaced by a new one, not served as it is.
    (tmp_path / "config" / ID_NAME).write_text("not an id\n")
    third = start_runtime()
    new_id, _ = _ids(falcon.testing.TestClient(create_app(third)))
    assert new_id != health_id and len(new_id) == 32
    assert (tmp_path / "config" / ID_NAME).read_text().strip() == new_id


def test_zeroconf_setting_decides_whether_the_serving_runtime_announces(tmp_path: Path) -> None:
    for value, expected in (("false", False), ("true", True)):
        runtime = Runtime(make_settings(tmp_path / value, YTP_ZEROCONF=value), websocket=True)
        try:
            assert (runtime.announcer is not None) is expected
        finally:
            runtime.store.close()


class _Seen(ServiceListener):
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.removed: set[str] = set()
        self.changed = threading.Event()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add(name)

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.removed.add(name)

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add(name)


def test_a_zeroconf_browser_finds_the_running_service_and_sees_it_go(
    make_server: Callable[..., Server],
) -> None:
    browser_zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    seen = _Seen()
    browser = ServiceBrowser(browser_zc, SERVICE_TYPE, seen)
    try:
        server = make_server(YTP_ZEROCONF="true")
        instance = server.get("/api/health").json()["instance_id"]
        wait_for(lambda: server.log().count("announced on the local network") == 1,
                 timeout=30, message="the announcement")
        # Start-up did not wait for it: zeroconf probes the network for a second or two.
        log = server.log()
        assert log.index("appliance ready") < log.index("announced on the local network")
        # This service's name: other tests (other workers) announce on loopback too, and a
        # name of theirs, seen first, may be gone before it is looked up.
        ours = f" {instance[:6]}.{SERVICE_TYPE}"
        name = wait_for(lambda: next((n for n in seen.names if n.endswith(ours)), None),
                        timeout=15, message="the browser to see the service")
        info = browser_zc.get_service_info(SERVICE_TYPE, name, timeout=5000)
        assert info is not None
        assert info.port == server.port
        assert info.parsed_addresses() == ["127.0.0.1"]
        assert info.properties[b"id"] == instance.encode()
        assert info.properties[b"ws_port"] == str(server.port + 1).encode()

        server.stop()
        wait_for(lambda: name in seen.removed, timeout=15,
                 message="the goodbye when the service stops")
    finally:
        browser.cancel()
        browser_zc.close()


def test_zeroconf_runs_without_its_compiled_modules() -> None:
    """As bootstrap.sh installs it (pyproject.toml): 2.7 MiB less of the worker resident."""
    import zeroconf._dns

    assert zeroconf._dns.__file__.endswith(".py"), (
        f"{zeroconf._dns.__file__}: install zeroconf as bootstrap.sh does")


def announce(settings: Settings) -> Announcer:
    """An announcement made in this process, its thread ended (announced or given up)."""
    announcer = Announcer(settings, "0123456789abcdef" * 2)
    announcer.start()
    assert announcer._thread is not None
    announcer._thread.join(60)
    assert not announcer._thread.is_alive()
    return announcer


@pytest.mark.parametrize("hostname", ["x" * 64, "é" * 32, "pi.lan", ""],
                         ids=["long", "two-byte-characters", "dotted", "empty"])
def test_any_host_name_is_announced_in_a_dns_label(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hostname: str) -> None:
    """A machine's name may be 64 bytes and more than ASCII; the instance name and the
    host's are labels of 63 bytes at most."""
    monkeypatch.setattr(socket, "gethostname", lambda: hostname)
    announcer = announce(make_settings(tmp_path, YTP_HOST="127.0.0.1", YTP_ZEROCONF="true"))
    try:
        assert announcer.announced.is_set()
        assert announcer.name is not None
        label = announcer.name.removesuffix(f".{SERVICE_TYPE}")
        assert label.startswith("appliance ") and label.endswith(" 012345")
        assert len(label.encode()) <= MAX_LABEL
        assert label.split(" ")[1] == ((hostname.split(".")[0] or "appliance")
                                       .encode()[:46].decode(errors="ignore"))
    finally:
        announcer.stop()
    info = service_info(make_settings(tmp_path), "0" * 32, ["127.0.0.1"])
    assert info.server is not None and len(info.server.removesuffix(".local.").encode()) <= 63


def test_a_host_given_by_name_is_announced_by_its_address(tmp_path: Path) -> None:
    assert local_addresses("localhost") == ["127.0.0.1"]
    assert local_addresses("192.0.2.7") == ["192.0.2.7"]
    assert local_addresses("no-such-host.invalid") == []
    assert all(not a.startswith("127.") for a in local_addresses("0.0.0.0"))
    announcer = announce(make_settings(tmp_path, YTP_HOST="localhost", YTP_ZEROCONF="true"))
    try:
        assert announcer.announced.is_set()
    finally:
        announcer.stop()


def test_what_an_announcement_cannot_hold_is_said_plainly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(tmp_path, YTP_HOST="127.0.0.1", YTP_ZEROCONF="true",
                             YTP_BASE_PATH="/" + "a" * 300)
    with caplog.at_level(logging.WARNING, logger="appliance.discovery"):
        announcer = announce(settings)
    announcer.stop()
    assert not announcer.announced.is_set()
    assert "its base_path is longer than an announcement holds (255 bytes)" in caplog.text
    fits = "/" + "a" * (MAX_TXT - len("base_path=//")) + "/"  # the setting ends in "/"
    info = service_info(make_settings(tmp_path, YTP_BASE_PATH=fits), "0" * 32, ["127.0.0.1"])
    assert info.properties[b"base_path"] == fits.encode()


def test_a_stranger_holding_our_name_gets_us_another_and_we_say_goodbye(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Another host on the network already announces the name this service would take: the
    service announces itself under another, with its own port, address and TXT record, says
    which in the log, and says goodbye under it when it stops (in this process, so that
    mutation testing judges the announcer)."""
    monkeypatch.setattr(socket, "gethostname", lambda: "stranger-test")
    # One probe, sent last with no wait after it (as python-zeroconf sends its third): its
    # answer counts for nothing, so the holder is found by the listening before the probes
    # (without it the name was taken twice whenever the holder answered late).
    monkeypatch.setattr(zeroconf_core, "_REGISTER_BROADCASTS", 1)
    # The holder's answer took more than the 1.5 s listening on a box at a load of 10 (CI);
    # the listening ends as soon as the name is heard held, so room costs nothing here.
    monkeypatch.setattr(discovery, "LISTEN_FIRST", 60.0)
    instance = "feedface" * 4
    settings = make_settings(tmp_path, YTP_HOST="127.0.0.1", YTP_ZEROCONF="true")
    taken = f"appliance stranger-test {instance[:6]}.{SERVICE_TYPE}"
    stranger = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    seen = _Seen()
    browser = ServiceBrowser(stranger, SERVICE_TYPE, seen)
    Announcer(settings, instance).stop()  # a stop before any start has nothing to end
    try:
        stranger.register_service(ServiceInfo(
            SERVICE_TYPE, taken, port=9, properties={"id": "not yours"},
            server="stranger.local.", parsed_addresses=["127.0.0.1"]))
        announcer = Announcer(settings, instance)
        with caplog.at_level(logging.INFO, logger="appliance.discovery"):
            announcer.start()
            assert announcer.announced.wait(120), caplog.text
        name = announcer.name
        assert name is not None and name != taken and name.endswith(f".{SERVICE_TYPE}")
        assert (f"announced on the local network as {name!r} (127.0.0.1 port "
                f"{settings.port})") in caplog.messages
        info = stranger.get_service_info(SERVICE_TYPE, name, timeout=5000)
        assert info is not None
        assert (info.port, info.parsed_addresses()) == (settings.port, ["127.0.0.1"])
        assert info.properties == {b"id": instance.encode(), b"version": __version__.encode(),
                                   b"base_path": settings.base_path.encode(),
                                   b"ws_port": str(settings.websocket_port).encode()}
        announcer.stop()
        wait_for(lambda: name in seen.removed, timeout=15, message="the goodbye")
    finally:
        browser.cancel()
        stranger.close()
