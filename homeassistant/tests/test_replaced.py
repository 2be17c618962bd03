"""An appliance set up anew (its config folder, which holds its instance id, lost) answers at
the entry's address with another id: the entry's credentials are not sent there until the
person adopts it (a repair), and the adoption is proven with credentials it accepts. A LAN
stranger at the address is the same case: it gets nothing."""

from __future__ import annotations

import shutil
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, CONF_TOKEN, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.appliance.const import DOMAIN
from support.server import Server

from .conftest import in_executor, instance_id, until
from .fake_appliance import INSTANCE, FakeAppliance

OTHER = "cd" * 16
SECRET = "Token the-entrys-secret"


def _issue(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"other_appliance_{entry.entry_id}")


async def _fix(hass: HomeAssistant, entry: MockConfigEntry) -> tuple[Any, dict[str, Any]]:
    """The repair's flow manager and its first step."""
    assert await async_setup_component(hass, "repairs", {})
    manager = hass.data["repairs"]["flow_manager"]
    result = await manager.async_init(
        DOMAIN, data={"issue_id": f"other_appliance_{entry.entry_id}"})
    return manager, dict(result)


async def _loaded_on_fake(hass: HomeAssistant, fake: FakeAppliance) -> MockConfigEntry:
    entry = MockConfigEntry(domain=DOMAIN, title="Mine", unique_id=INSTANCE,
                            data={CONF_HOST: "127.0.0.1", CONF_PORT: fake.port,
                                  CONF_TOKEN: "the-entrys-secret"})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return entry


async def _replaced(hass: HomeAssistant, fake: FakeAppliance, entry: MockConfigEntry) -> int:
    """The fake now answers as another appliance, its stream ended: the entry has noticed.
    How many credentials the fake had been sent before."""
    fake.answers["/api/health"] = {"instance_id": OTHER, "version": "1.0"}
    sent = len(fake.authorizations)
    fake.frames.put_nowait(None)  # the restart ends the event stream
    await until(lambda: _issue(hass, entry) is not None, message="the repair issue")
    return sent


async def test_another_appliance_at_the_address_gets_no_credentials(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    entry = await _loaded_on_fake(hass, fake)
    sent = await _replaced(hass, fake, entry)
    state = await until(lambda: (s := hass.states.get("sensor.mine_active_downloads"))
                        and s.state == "unavailable" and s, message="unavailable")
    assert state.state == "unavailable"
    # reconnects go on, and a reload of the entry: each asks the open health only
    fake.paths.clear()
    await until(lambda: len(fake.paths) >= 2, message="a reconnect")
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.error_reason_translation_key == "other_appliance"
    assert entry.error_reason_translation_placeholders == {"found": OTHER}
    assert len(fake.authorizations) == sent
    assert set(fake.paths) == {"/api/health"}
    issue = _issue(hass, entry)
    assert issue is not None and issue.is_fixable
    assert issue.translation_placeholders == {
        "title": "Mine", "address": f"http://127.0.0.1:{fake.port}", "found": OTHER}
    # the person's own appliance back at the address: the issue goes by itself
    fake.answers["/api/health"] = {"instance_id": INSTANCE, "version": "1.0"}
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert _issue(hass, entry) is None


async def test_the_repair_goes_with_its_entry(hass: HomeAssistant,
                                              fake: FakeAppliance) -> None:
    entry = await _loaded_on_fake(hass, fake)
    await _replaced(hass, fake, entry)
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert _issue(hass, entry) is None


async def test_the_adoption_is_proven_with_credentials_it_accepts(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    entry = await _loaded_on_fake(hass, fake)
    devices = dr.async_get(hass)
    device = devices.async_get_device({(DOMAIN, INSTANCE)})
    assert device is not None
    await _replaced(hass, fake, entry)
    accepted = {"Token the-new-token"}
    configuration = fake.answers["/api/system/configuration"]

    def guarded(request: Any) -> Any:
        if request.headers.get("Authorization") not in accepted:
            return web.json_response({"error": "Unauthorized"}, status=401)
        return configuration(request)

    fake.answers["/api/system/configuration"] = guarded
    manager, result = await _fix(hass, entry)
    assert result["step_id"] == "confirm"
    assert result["description_placeholders"]["found"] == OTHER
    sent = len(fake.authorizations)
    result = dict(await manager.async_configure(result["flow_id"], {}))  # the entry's own
    assert result["errors"] == {"base": "invalid_auth"}
    assert fake.authorizations[sent:] == [SECRET]  # on the person's word only
    assert entry.unique_id == INSTANCE
    result = dict(await manager.async_configure(result["flow_id"],
                                                {CONF_TOKEN: " the-new-token "}))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.unique_id == OTHER
    assert entry.data == {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port,
                          CONF_TOKEN: "the-new-token"}
    assert entry.state is ConfigEntryState.LOADED
    assert _issue(hass, entry) is None
    # the same device (automations and device triggers name it by its id), keyed anew
    assert devices.async_get_device({(DOMAIN, OTHER)}).id == device.id
    assert devices.async_get_device({(DOMAIN, INSTANCE)}) is None


async def test_a_refusal_of_the_adoption_says_why(hass: HomeAssistant,
                                                  fake: FakeAppliance) -> None:
    entry = await _loaded_on_fake(hass, fake)
    await _replaced(hass, fake, entry)
    fake.answers["/api/system/configuration"] = lambda _: web.json_response(
        {"error": "Too many failed attempts.", "code": "TOO_MANY_REQUESTS"}, status=429)
    manager, result = await _fix(hass, entry)
    result = dict(await manager.async_configure(result["flow_id"], {}))
    assert result["errors"] == {"base": "refused"}
    assert result["description_placeholders"]["error"] == "Too many failed attempts."
    fake.answers["/api/system/configuration"] = {"not": "a configuration"}
    fake.answers["/api/health"] = lambda _: web.Response(text="<html>", status=200)
    result = dict(await manager.async_configure(result["flow_id"], {}))
    assert result["errors"] == {"base": "not_appliance"}
    assert entry.unique_id == INSTANCE


async def test_nothing_to_adopt_when_the_appliance_is_back_or_known(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    entry = await _loaded_on_fake(hass, fake)
    await _replaced(hass, fake, entry)
    # the id found there is another entry's appliance: two entries on one would fight
    other = MockConfigEntry(domain=DOMAIN, title="Other", unique_id=OTHER,
                            data={CONF_HOST: "127.0.0.2", CONF_PORT: 1})
    other.add_to_hass(hass)
    _, result = await _fix(hass, entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    # the person's own appliance is back before they chose
    fake.answers["/api/health"] = {"instance_id": INSTANCE, "version": "1.0"}
    _, result = await _fix(hass, entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_replaced"
    assert entry.unique_id == INSTANCE
    await hass.async_block_till_done()
    await until(lambda: entry.state is ConfigEntryState.LOADED, message="loaded again")
    assert _issue(hass, entry) is None


async def test_its_announcement_is_not_a_second_appliance(hass: HomeAssistant,
                                                          fake: FakeAppliance) -> None:
    """Announced with its new id at the entry's address: not offered as a new appliance
    (a second entry on the same service); the entry's repair adopts it."""
    entry = MockConfigEntry(domain=DOMAIN, title="Mine", unique_id=INSTANCE,
                            data={CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF},
        data=ZeroconfServiceInfo(
            ip_address=ip_address("127.0.0.1"), ip_addresses=[ip_address("127.0.0.1")],
            hostname="box.local.", name="appliance box._appliance._tcp.local.",
            port=fake.port, type="_appliance._tcp.local.",
            properties={"id": OTHER, "version": "1"}))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "replaced"
    assert fake.paths == []


@pytest.mark.usefixtures("media")
async def test_a_real_appliance_that_lost_its_config_folder_is_adopted(
        hass: HomeAssistant, tmp_path: Path) -> None:
    """The real service, with its credentials in its environment (they outlive the folder):
    stopped, its config folder removed, started again on the same port."""
    server = Server(tmp_path / "box", {"YTP_AUTH_USERNAME": "ha",
                                       "YTP_AUTH_PASSWORD": "a long enough password",
                                       "YTP_FILE_LOGGING": "false"})
    await in_executor(hass, server.start)
    try:
        old = await in_executor(hass, instance_id, server)
        entry = MockConfigEntry(domain=DOMAIN, title="Box", unique_id=old, data={
            CONF_HOST: "127.0.0.1", CONF_PORT: server.port, CONF_USERNAME: "ha",
            CONF_PASSWORD: "a long enough password"})
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        entities = er.async_get(hass)
        sensor = entities.async_get("sensor.box_active_downloads")
        assert sensor is not None and sensor.unique_id == f"{old}_active"
        device_id = sensor.device_id

        await in_executor(hass, server.stop)
        await in_executor(hass, shutil.rmtree, server.root / "config")
        await in_executor(hass, server.start)
        new = await in_executor(hass, instance_id, server)
        assert new != old
        await until(lambda: _issue(hass, entry) is not None, within=90,
                    message="the repair issue")
        assert hass.states.get("sensor.box_active_downloads").state == "unavailable"

        manager, result = await _fix(hass, entry)
        assert result["description_placeholders"]["found"] == new
        result = dict(await manager.async_configure(result["flow_id"], {}))
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        await until(lambda: entry.state is ConfigEntryState.LOADED, message="loaded")
        assert entry.unique_id == new
        # the same entities and device, keyed on the new id: automations go on working
        sensor = entities.async_get("sensor.box_active_downloads")
        assert sensor is not None and sensor.unique_id == f"{new}_active"
        assert hass.states.get("sensor.box_active_downloads").state == "0"
        assert sensor.device_id == device_id
        device = dr.async_get(hass).async_get(device_id)
        assert device is not None and device.identifiers == {(DOMAIN, new)}
        assert _issue(hass, entry) is None
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await in_executor(hass, server.stop)
