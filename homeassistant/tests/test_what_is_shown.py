"""What the entities and the entry show of edge answers: nothing finished yet, numbers past
what a double holds exactly, the tasks' page bound, a download's first progress, the reason
a refused setup gives."""

from __future__ import annotations

import json

import pytest_socket
from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.appliance import api
from custom_components.appliance.const import DOMAIN

from .conftest import until
from .fake_appliance import INSTANCE, FakeAppliance, loaded


async def test_nothing_finished_yet_is_unknown(hass: HomeAssistant,
                                               fake: FakeAppliance) -> None:
    await loaded(hass, fake)
    state = hass.states.get("sensor.fake_last_finished")
    assert state is not None and state.state == STATE_UNKNOWN


async def test_the_failed_count_is_the_services(hass: HomeAssistant,
                                                fake: FakeAppliance) -> None:
    fake.answers["/api/engine/stats"] = {"failed": 3}
    await loaded(hass, fake)
    assert hass.states.get("sensor.fake_failed_downloads").state == "3"


async def test_numbers_a_double_does_not_hold_are_text(hass: HomeAssistant,
                                                       fake: FakeAppliance) -> None:
    """Past 2**53 a number loses digits in JavaScript (the frontend) and in the recorder's
    JSON readers: shown as text, digit for digit."""
    fake.answers["/api/history"] = {"items": [
        {"id": "z", "title": "t", "finished_at": 2**53 - 1, "preset": 2**53}]}
    await loaded(hass, fake)
    attributes = hass.states.get("sensor.fake_last_finished").attributes
    assert attributes["finished_at"] == 2**53 - 1
    assert attributes["preset"] == str(2**53)
    assert api.capped(-(2**53), 30) == str(-(2**53))
    assert api.capped(1e300, 30) == "1e+300"


async def test_the_tasks_are_read_up_to_their_page_bound(hass: HomeAssistant,
                                                         fake: FakeAppliance) -> None:
    fake.answers["/api/tasks"] = {"items": [{"id": 1}], "pagination": {"has_next": True}}
    entry = await loaded(hass, fake)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    pages = [path for path in fake.paths if path.startswith("/api/tasks")]
    assert len(pages) == api.MAX_TASK_PAGES
    assert pages[-1] == f"/api/tasks?page={api.MAX_TASK_PAGES}&per_page={api.TASK_PAGE}"


async def test_a_downloads_first_progress_is_shown_at_once(hass: HomeAssistant,
                                                           fake: FakeAppliance) -> None:
    """Progress is coalesced to one change a second, the first of a burst at once: shown
    as soon as it is applied, before any timer ran."""
    entry = await loaded(hass, fake)
    data = entry.runtime_data.data
    fake.frames.put_nowait(json.dumps({"event": "item_updated", "data": {
        "id": "q", "status": "downloading", "speed": 1000}}))
    await until(lambda: "q" in data.queue, message="the progress applied")
    await hass.async_block_till_done()
    assert hass.states.get("sensor.fake_active_downloads").state == "1"


async def test_refused_credentials_say_so_in_the_integrations_words(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    fake.answers["/api/system/configuration"] = lambda _: web.json_response(
        {"error": "Unauthorized"}, status=401)
    entry = MockConfigEntry(domain=DOMAIN, title="Fake", unique_id=INSTANCE,
                            data={CONF_HOST: "127.0.0.1", CONF_PORT: fake.port,
                                  CONF_TOKEN: "wrong"})
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.error_reason_translation_key == "invalid_auth"
    assert entry.reason == ("The appliance refuses the stored credentials; reauthenticate "
                            "the entry")


async def test_an_appliance_at_an_ipv6_address(hass: HomeAssistant) -> None:
    """Its API and its event stream, each at "[::1]" (a bare "::1" is no URL's host)."""
    pytest_socket.socket_allow_hosts(["127.0.0.1", "::1"], allow_unix_socket=True)
    fake = FakeAppliance()
    await fake.start("::1")
    try:
        entry = MockConfigEntry(domain=DOMAIN, title="Fake", unique_id=INSTANCE,
                                data={CONF_HOST: "::1", CONF_PORT: fake.port})
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        assert fake.streams_opened == 1
        assert entry.runtime_data.client.base_url == f"http://[::1]:{fake.port}"
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await fake.stop()
