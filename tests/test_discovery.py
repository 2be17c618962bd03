"""The service's identity (instance id) and its zeroconf announcement, as Home Assistant
sees them: the id is the same across restarts and in both places a client reads it, and a
real zeroconf browser on loopback finds the running service and sees it leave."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import falcon.testing
from conftest import make_settings
from support.server import Server, wait_for
from zeroconf import IPVersion, ServiceBrowser, ServiceListener, Zeroconf

from appliance.api.app import create_app
from appliance.discovery import SERVICE_TYPE
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
        name = wait_for(lambda: next(iter(seen.names), None), timeout=15,
                        message="the browser to see the service")
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
