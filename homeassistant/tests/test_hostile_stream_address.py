"""Where the service's configuration says its event stream is (``websocket``: port and path)
is the service's word: a port of ``true`` (JSON's, which Python counts as the number 1), a
path no URL holds, or one of megabytes must each be refused as an answer no appliance gives,
with the entry retried and the reason shown, never an unknown error with a traceback."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

from .fake_appliance import FakeAppliance, fake_entry


@pytest.mark.parametrize("websocket", [
    {"port": True},
    {"port": 70000},
    {"port": "8082"},
    {"path": "/\udcff"},
    {"path": "/ws\r\nX-Injected: 1"},
    {"path": "/ws?token=x#y"},
    {"path": "/ws/../api"},
    {"path": "/" + "a" * 1_000_000},
    {"path": "ws"},
    {"path": ["/ws"]},
])
async def test_a_stream_address_no_appliance_gives_is_refused(
        hass: HomeAssistant, fake: FakeAppliance, websocket: dict[str, Any]) -> None:
    fake.answers["/api/system/configuration"] = lambda _: {
        "app": {"version": "1.0"}, "paused": False, "queue": [], "presets": [],
        "websocket": {"port": fake.port, "path": "/ws", **websocket}}
    entry = fake_entry(hass, fake)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert entry.reason.startswith("The appliance answered something it should not: "
                                   "/api/system/configuration: no websocket at")
    assert len(entry.reason) < 600
    # (what it got, cut)
    assert f"path {repr(websocket.get('path', '/ws'))[:100]}" in entry.reason
    assert fake.streams_opened == 0
