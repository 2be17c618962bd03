"""The event stream's opening handshake follows no redirect. aiohttp's ``ws_connect`` has no
switch for it, and a LAN device answering at the appliance's websocket port with a 30x sent
Home Assistant wherever it pointed (the credentials stayed behind on a change of host, a bare
request did not). Refused now, on setup and on every reconnect, and said in the entry's
state and the log; so is a catch-up refused after the stream opened again."""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant

from .conftest import until
from .fake_appliance import FakeAppliance, fake_entry, loaded


@pytest.fixture
async def elsewhere() -> FakeAppliance:
    """Where the hostile redirect points: it records every request it gets."""
    server = FakeAppliance()
    await server.start()
    yield server  # type: ignore[misc]
    await server.stop()


def redirect_to(target: FakeAppliance, status: int = 302) -> web.Response:
    return web.Response(status=status,
                        headers={"Location": f"http://127.0.0.1:{target.port}/stolen"})


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_of_the_handshake_is_refused_at_setup(
        hass: HomeAssistant, fake: FakeAppliance, elsewhere: FakeAppliance,
        status: int) -> None:
    fake.ws_answer = lambda _: redirect_to(elsewhere, status)
    entry = fake_entry(hass, fake)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert elsewhere.paths == []
    assert entry.reason == (
        f"The appliance answered something it should not: websocket: HTTP {status} to "
        f"http://127.0.0.1:{elsewhere.port}/stolen, not followed (the appliance never "
        "redirects)")


async def test_a_redirect_of_a_reconnect_is_refused_and_said_once(
        hass: HomeAssistant, fake: FakeAppliance, elsewhere: FakeAppliance,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="custom_components.appliance")
    entry = await loaded(hass, fake)
    assert entry.state is ConfigEntryState.LOADED
    fake.ws_answer = lambda _: redirect_to(elsewhere)
    fake.frames.put_nowait(None)  # the stream ends: Home Assistant connects again
    await until(lambda: hass.states.get("switch.fake_queue_paused").state == STATE_UNAVAILABLE,
                message="the entities unavailable")
    await until(lambda: [r for r in caplog.records if "not followed" in r.getMessage()],
                message="the refusal in the log")
    coordinator = entry.runtime_data
    coordinator.reconnect_delay = 0.01  # a second try meets the same refusal
    attempts = fake.paths.count("/api/health")
    await until(lambda: fake.paths.count("/api/health") > attempts + 1,
                message="more reconnects")
    assert elsewhere.paths == []
    said = [r.getMessage() for r in caplog.records if "not followed" in r.getMessage()]
    assert len(said) == 1, said
    assert said[0].startswith(f"appliance 127.0.0.1:{fake.port}: the event stream does not "
                              "open again: websocket: HTTP 302 to ")
    # back to an appliance that answers as one
    fake.ws_answer = None
    await until(lambda: hass.states.get("switch.fake_queue_paused").state == "off",
                message="available again")
    fake.frames.put_nowait(json.dumps({"event": "paused", "data": {}}))
    await until(lambda: hass.states.get("switch.fake_queue_paused").state == "on",
                message="the stream read again")


async def test_a_catch_up_that_fails_after_a_reconnect_says_why(
        hass: HomeAssistant, fake: FakeAppliance, caplog: pytest.LogCaptureFixture) -> None:
    """The stream opens again but the snapshot that follows it is refused: the coordinator
    logged only the outage's first failure ("the event stream closed"), never this one."""
    caplog.set_level(logging.INFO, logger="custom_components.appliance")
    await loaded(hass, fake)
    fake.answers["/api/engine/stats"] = ["not", "an", "object"]
    fake.frames.put_nowait(None)
    await until(lambda: [r for r in caplog.records
                         if "/api/engine/stats: expected a JSON object" in r.getMessage()],
                message="the reason in the log")
