"""The config flow against a real appliance: every step, every error, every abort."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, CONF_TOKEN, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.appliance.const import CONF_CHECK_UPDATES, CONF_DEFAULT_PRESET, DOMAIN
from support.server import Server, free_port_pair

from .conftest import entry_data, instance_id


async def _user_flow(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return result


async def _unload_all(hass: HomeAssistant) -> None:
    for entry in hass.config_entries.async_entries(DOMAIN):
        await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_user_flow_with_a_token(hass: HomeAssistant, appliance: Server) -> None:
    result = await _user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(appliance))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Appliance (127.0.0.1)"
    assert result["data"] == entry_data(appliance)
    assert result["result"].unique_id == instance_id(appliance)
    await _unload_all(hass)


async def test_user_flow_with_user_and_password(hass: HomeAssistant, appliance: Server) -> None:
    """YTP_AUTH_USERNAME/PASSWORD of the service; empty token field ignored."""
    result = await _user_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {
        CONF_HOST: "127.0.0.1", CONF_PORT: appliance.port, CONF_TOKEN: "",
        CONF_USERNAME: "ha", CONF_PASSWORD: "a long enough password"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_HOST: "127.0.0.1", CONF_PORT: appliance.port,
                              CONF_USERNAME: "ha", CONF_PASSWORD: "a long enough password"}
    await _unload_all(hass)


async def test_a_user_and_password_beyond_latin_1(hass: HomeAssistant,
                                                 tmp_path: Path) -> None:
    """The service reads Basic credentials as UTF-8 (its challenge says so): a name or
    password with "ü" or "€" was sent in Latin-1 (refused as wrong) or not at all (an
    unexpected error), so such an appliance could not be set up."""
    password = "pässwörd mit € und 🔑"
    server = Server(tmp_path / "box", {"YTP_AUTH_USERNAME": "jürgen",
                                       "YTP_AUTH_PASSWORD": password,
                                       "YTP_FILE_LOGGING": "false"})
    await hass.async_add_executor_job(server.start)
    try:
        result = await _user_flow(hass)
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {
            CONF_HOST: "127.0.0.1", CONF_PORT: server.port, CONF_USERNAME: "jürgen",
            CONF_PASSWORD: password})
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        assert result["result"].state is ConfigEntryState.LOADED
        await _unload_all(hass)
    finally:
        await hass.async_add_executor_job(server.stop)


async def test_wrong_token_then_the_right_one(hass: HomeAssistant, appliance: Server) -> None:
    result = await _user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(appliance, token="not-the-token"))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    # No credentials at all, while the service requires them: the same answer.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: appliance.port})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(appliance))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await _unload_all(hass)


async def test_unreachable_then_reachable(hass: HomeAssistant, appliance: Server) -> None:
    result = await _user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(appliance, port=free_port_pair()))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(appliance))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await _unload_all(hass)


async def test_something_else_on_the_port(hass: HomeAssistant, appliance: Server,
                                          media: dict[str, str]) -> None:
    """An HTTP server that is not an appliance (the media origin): said so, with what it
    answered, not "Unexpected error"."""
    origin_port = int(media["clip"].split(":")[2].split("/")[0])
    result = await _user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(appliance, port=origin_port))
    assert result["errors"] == {"base": "not_appliance"}
    assert result["description_placeholders"]["error"].startswith("HTTP 4")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(appliance))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await _unload_all(hass)


async def test_the_same_appliance_twice_is_refused(hass: HomeAssistant,
                                                   loaded_entry: MockConfigEntry,
                                                   appliance: Server) -> None:
    result = await _user_flow(hass)
    # Another name for the same service: still the same instance id.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(appliance, host="localhost"))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert loaded_entry.data[CONF_HOST] == "localhost"  # the entry follows the address


def _discovery(appliance: Server, **properties: str) -> ZeroconfServiceInfo:
    return ZeroconfServiceInfo(
        ip_address=ip_address("127.0.0.1"), ip_addresses=[ip_address("127.0.0.1")],
        hostname="box.local.", name="appliance box 0123ab._appliance._tcp.local.",
        port=appliance.port, type="_appliance._tcp.local.",
        properties={"id": instance_id(appliance), "version": "0", "ws_port": "0",
                    **properties})


async def test_zeroconf_discovery_then_the_token(hass: HomeAssistant, appliance: Server) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF},
        data=_discovery(appliance))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_confirm"
    assert (result["description_placeholders"]["host"],
            result["description_placeholders"]["port"]) == ("127.0.0.1", str(appliance.port))
    # The discovered card's title names the address.
    [flow] = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["title_placeholders"] == {"host": "127.0.0.1"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: appliance.token})  # type: ignore[attr-defined]
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == entry_data(appliance)
    assert result["result"].unique_id == instance_id(appliance)
    await _unload_all(hass)



async def _known_and_announced(hass: HomeAssistant, appliance: Server, port: int
                               ) -> tuple[MockConfigEntry, Any]:
    """An entry of the appliance at ``port``, and the flow's first answer to the appliance's
    announcement (at its real port)."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id=instance_id(appliance),
                            data=entry_data(appliance, port=port))
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF},
        data=_discovery(appliance))
    return entry, result

async def test_zeroconf_of_a_known_appliance_that_moved_asks_then_moves(
        hass: HomeAssistant, appliance: Server) -> None:
    """The appliance got a new address (its old one answers no more): the announcement asks
    the person, and on their word the entry moves there, proven with its own credentials."""
    gone = free_port_pair()  # where the appliance was: nothing answers there now
    entry, result = await _known_and_announced(hass, appliance, gone)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_move"
    assert result["description_placeholders"]["old"] == f"127.0.0.1:{gone}"
    assert result["description_placeholders"]["new"] == f"127.0.0.1:{appliance.port}"
    assert entry.data[CONF_PORT] == gone  # nothing moved before the person said so
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "moved"
    assert entry.data == entry_data(appliance)
    await hass.async_block_till_done()  # the entry's reload on its new address
    assert entry.state is ConfigEntryState.LOADED
    await _unload_all(hass)


async def test_zeroconf_of_a_known_appliance_where_it_is(hass: HomeAssistant,
                                                         appliance: Server) -> None:
    _, result = await _known_and_announced(hass, appliance, appliance.port)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize("port", [None, 0, 70000])
async def test_zeroconf_without_a_usable_port(hass: HomeAssistant, appliance: Server,
                                              port: int | None) -> None:
    info = _discovery(appliance)
    info.port = port
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=info)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_address"


@pytest.mark.parametrize("announced", ["", "../../x", "<b>id</b>", "f" * 65, "\ufffd" * 8,
                                       # another appliance's subscription's device
                                       "0123abcd_task_1"])
async def test_zeroconf_without_an_id_is_not_an_appliance(hass: HomeAssistant,
                                                          appliance: Server,
                                                          announced: str) -> None:
    """Anyone on the network may announce: an id that is none (it becomes the entry's unique
    id and part of every device id) ends the flow."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF},
        data=_discovery(appliance, id=announced))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_instance_id"


async def test_zeroconf_answered_by_another_appliance(hass: HomeAssistant,
                                                      appliance: Server) -> None:
    """The announcement named one instance, the address answers as another."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF},
        data=_discovery(appliance, id="f" * 32))
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: appliance.token})  # type: ignore[attr-defined]
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unique_id_mismatch"


async def test_reauth(hass: HomeAssistant, appliance: Server) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id=instance_id(appliance),
                            data=entry_data(appliance, token="old-token"))
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["title"] == entry.title
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "still-wrong"})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: appliance.token})  # type: ignore[attr-defined]
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data == entry_data(appliance)
    await hass.async_block_till_done()
    await _unload_all(hass)


async def test_reconfigure(hass: HomeAssistant, appliance: Server) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id=instance_id(appliance),
                            data=entry_data(appliance, host="127.0.0.2"))
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    # The form starts from the entry's address.
    defaults = {str(key): key.default() for key in result["data_schema"].schema
                if key.default is not vol.UNDEFINED}
    assert defaults == {CONF_HOST: "127.0.0.2", CONF_PORT: appliance.port}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(appliance, port=free_port_pair()))
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], entry_data(appliance))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == entry_data(appliance)
    await hass.async_block_till_done()
    await _unload_all(hass)


@pytest.mark.parametrize("flow", ["reauth", "reconfigure"])
async def test_another_appliance_at_the_address_is_refused(
        hass: HomeAssistant, appliance: Server, flow: str) -> None:
    """The entry is for one appliance; the address answers as another."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id="e" * 32,
                            data=entry_data(appliance, token="old"))
    entry.add_to_hass(hass)
    if flow == "reauth":
        result = await entry.start_reauth_flow(hass)
        form: dict[str, Any] = {CONF_TOKEN: appliance.token}  # type: ignore[attr-defined]
    else:
        result = await entry.start_reconfigure_flow(hass)
        form = entry_data(appliance, host="localhost")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_appliance"
    assert entry.data == entry_data(appliance, token="old")


async def test_options(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    # The preset field offers the service's own presets.
    schema = result["data_schema"].schema
    preset = next(key for key in schema if key == CONF_DEFAULT_PRESET)
    assert "default" in schema[preset].container
    # An entry with no options yet: the "default" preset, and releases looked for.
    assert {str(key): key.default() for key in schema} == {
        CONF_DEFAULT_PRESET: "default", CONF_CHECK_UPDATES: True}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_DEFAULT_PRESET: "default", CONF_CHECK_UPDATES: False})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options == {CONF_DEFAULT_PRESET: "default", CONF_CHECK_UPDATES: False}
    await hass.async_block_till_done()


async def test_options_of_an_entry_not_loaded(hass: HomeAssistant, appliance: Server) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id=instance_id(appliance),
                            data=entry_data(appliance),
                            options={CONF_DEFAULT_PRESET: "audio"})
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_DEFAULT_PRESET: "video", CONF_CHECK_UPDATES: True})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_DEFAULT_PRESET] == "video"
