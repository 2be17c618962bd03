"""The API's configuration side in process: what a client reads at start
(``/api/system/configuration``), health and engine figures, pause and resume."""

from __future__ import annotations

import pytest
from falcon.testing import TestClient


@pytest.mark.parametrize(("host", "url"), [
    ("[::1]:8081", "ws://[::1]:{port}/ws"),
    ("[fe80::1]", "ws://[fe80::1]:{port}/ws"),
    ("media.lan:8081", "ws://media.lan:{port}/ws"),
    ("192.168.1.20", "ws://192.168.1.20:{port}/ws"),
])
def test_the_websocket_url_is_on_the_host_the_request_came_to(
        client: TestClient, host: str, url: str) -> None:
    websocket = client.simulate_get("/api/system/configuration",
                                    headers={"Host": host}).json["websocket"]
    assert websocket["url"] == url.format(port=websocket["port"])
    assert websocket["path"] == "/ws" and websocket["flasharr_path"] == "/api/ws"
