"""An appliance behind a reverse proxy that keeps a prefix (``YTP_BASE_PATH``): the base path
it announces (or the person gives) is followed, as a path of the entry's address only."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from homeassistant import config_entries
from homeassistant.components.media_source import async_resolve_media
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.appliance import api
from custom_components.appliance.const import CONF_BASE_PATH, DOMAIN
from support.server import Server

from .conftest import in_executor, instance_id
from .fake_appliance import INSTANCE, FakeAppliance, user_form


def _announcement(instance: str, port: int, **properties: str) -> ZeroconfServiceInfo:
    return ZeroconfServiceInfo(
        ip_address=ip_address("127.0.0.1"), ip_addresses=[ip_address("127.0.0.1")],
        hostname="box.local.", name="appliance box._appliance._tcp.local.", port=port,
        type="_appliance._tcp.local.",
        properties={"id": instance, "version": "1", **properties})


async def _announced(hass: HomeAssistant, info: ZeroconfServiceInfo) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF}, data=info)
    return dict(result)


async def test_the_announced_base_path_is_followed(hass: HomeAssistant,
                                                   fake: FakeAppliance) -> None:
    fake.prefix = "/ytp/box"
    result = await _announced(hass, _announcement(INSTANCE, fake.port, base_path="/ytp/box/"))
    assert result["step_id"] == "zeroconf_confirm"
    result = dict(await hass.config_entries.flow.async_configure(result["flow_id"], {}))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port,
                              CONF_BASE_PATH: "/ytp/box"}
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    # every request of the flow and of the entry's setup went under the prefix
    assert fake.paths and all(path.startswith("/ytp/box/api/") for path in fake.paths)


@pytest.mark.parametrize("announced", [
    "//evil.example/x", "/../x", "/a/../b", "/a/./b", "http://evil.example/", "/ytp?x=1",
    "/ytp#x", "/%2e%2e/x", "/a\\b", "/a\nb", "/a b", "/@evil.example", "/a:b@c", "ytp",
    "/.hidden", "/a//b", "/" + "a" * 300, "/ytp\x00"])
async def test_a_base_path_that_is_no_plain_path_is_not_followed(
        hass: HomeAssistant, fake: FakeAppliance, announced: str) -> None:
    """Anyone may announce: a base path that could lead to another host, scheme or folder
    ends the flow before anything is asked."""
    result = await _announced(hass, _announcement(INSTANCE, fake.port, base_path=announced))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_address"
    assert fake.paths == []


def test_a_base_path_of_up_to_255_characters() -> None:
    longest = "/" + "/".join(["a" * 63] * 3 + ["a" * 62])
    assert len(longest) == api.MAX_BASE_PATH
    assert api.base_path(longest) == longest
    assert api.base_path(longest + "/") is None
    assert (api.base_path("/"), api.base_path(None), api.base_path("/ytp/")) == ("", "", "/ytp")


@pytest.mark.parametrize(("given", "stored"), [("ytp/", "/ytp"), (" /ytp/box/ ", "/ytp/box"),
                                               ("/", None), ("", None)])
async def test_a_base_path_given_by_hand(hass: HomeAssistant, fake: FakeAppliance,
                                         given: str, stored: str | None) -> None:
    fake.prefix = stored or ""
    result = await user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port,
                                    CONF_BASE_PATH: given})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"].get(CONF_BASE_PATH) == stored
    assert all(path.startswith(f"{stored or ''}/api/") for path in fake.paths)


@pytest.mark.parametrize("given", ["../x", "//evil.example", "http://evil.example/ytp",
                                   "/ytp?x", "/a/../../b"])
async def test_a_base_path_given_by_hand_that_is_no_path(hass: HomeAssistant,
                                                         fake: FakeAppliance,
                                                         given: str) -> None:
    result = await user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port,
                                    CONF_BASE_PATH: given})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_BASE_PATH: "invalid_base_path"}
    assert fake.paths == []


async def test_reauth_keeps_and_reconfigure_changes_the_base_path(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    fake.prefix = "/ytp"
    entry = MockConfigEntry(domain=DOMAIN, title="Mine", unique_id=INSTANCE, data={
        CONF_HOST: "127.0.0.1", CONF_PORT: fake.port, CONF_BASE_PATH: "/ytp",
        CONF_TOKEN: "old"})
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"],
                                                            {CONF_TOKEN: "new"})
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_BASE_PATH] == "/ytp" and entry.data[CONF_TOKEN] == "new"
    await hass.async_block_till_done()
    result = await entry.start_reconfigure_flow(hass)
    # the form shows the entry's base path, which a field left empty removes
    suggested = {str(key): (key.description or {}).get("suggested_value")
                 for key in result["data_schema"].schema}
    assert suggested[CONF_BASE_PATH] == "/ytp"
    fake.paths.clear()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port, CONF_TOKEN: "new"})
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port, CONF_TOKEN: "new"}
    assert fake.paths and all(path.startswith("/api/") for path in fake.paths)
    await hass.async_block_till_done()


async def test_a_real_appliance_under_a_base_path(hass: HomeAssistant, tmp_path: Path,
                                                  appliance: Server) -> None:
    """The real service with YTP_BASE_PATH, found by its announcement: the entry loads, and
    a file of its download folder plays from the URL under the prefix."""
    server = Server(tmp_path / "proxied", {"YTP_BASE_PATH": "/ytp/",
                                           "YTP_FILE_LOGGING": "false"})
    await in_executor(hass, server.start)
    try:
        server.download_path.mkdir(parents=True, exist_ok=True)
        (server.download_path / "clip.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + b"x" * 100)
        found = await in_executor(hass, instance_id, server)
        result = await _announced(hass, _announcement(found, server.port, base_path="/ytp/"))
        result = dict(await hass.config_entries.flow.async_configure(result["flow_id"], {}))
        assert result["type"] is FlowResultType.CREATE_ENTRY
        entry = result["result"]
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        assert entry.runtime_data.client.base_url == f"http://127.0.0.1:{server.port}/ytp"
        assert await async_setup_component(hass, "media_source", {})
        await hass.async_block_till_done()
        played = await async_resolve_media(
            hass, f"media-source://{DOMAIN}/{entry.entry_id}/clip.mp4", None)
        assert played.url.startswith(f"http://127.0.0.1:{server.port}/ytp/api/download/")
        async with aiohttp.ClientSession() as session, session.get(played.url) as answer:
            assert answer.status == 200
            assert (await answer.read()).endswith(b"x" * 100)
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await in_executor(hass, server.stop)
