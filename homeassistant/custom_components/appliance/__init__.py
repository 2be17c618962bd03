"""The appliance integration: a media downloader on the local network, pushed over its
websocket into Home Assistant."""

from __future__ import annotations

from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_TOKEN,
    CONF_USERNAME,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .api import ApplianceClient, Credentials, base_path
from .const import CONF_BASE_PATH, DOMAIN
from .coordinator import ApplianceConfigEntry, ApplianceCoordinator
from .entity import appliance_device
from .identity import async_clear
from .services import async_setup_services
from .subscriptions import async_track_task_devices

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.SENSOR,
    Platform.SWITCH,
    Platform.UPDATE,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Actions are registered once, for every entry (they take a config entry)."""
    async_setup_services(hass)
    return True


def client_for(hass: HomeAssistant, data: dict[str, object]) -> ApplianceClient:
    """A client on Home Assistant's shared session, from a config entry's (or a form's) data."""
    return ApplianceClient(
        async_get_clientsession(hass),
        str(data[CONF_HOST]),
        int(str(data[CONF_PORT])),
        Credentials(
            token=str(data.get(CONF_TOKEN) or "") or None,
            username=str(data.get(CONF_USERNAME) or "") or None,
            password=str(data.get(CONF_PASSWORD) or "") or None,
        ),
        # (checked where it was taken; one that is not a plain path is not followed)
        base_path(data.get(CONF_BASE_PATH)) or "",
    )


async def async_setup_entry(hass: HomeAssistant, entry: ApplianceConfigEntry) -> bool:
    coordinator = ApplianceCoordinator(hass, entry, client_for(hass, dict(entry.data)))
    websocket = await coordinator.async_connect()
    try:
        await coordinator.async_first_refresh()
        await coordinator.async_check_releases()
    except BaseException:
        await websocket.close()
        raise
    entry.runtime_data = coordinator
    # Before the platforms: a subscription's device names it as the one it hangs under, and
    # the platforms set up in any order (the buttons', which are all subscriptions', first).
    dr.async_get(hass).async_get_or_create(config_entry_id=entry.entry_id,
                                           **appliance_device(coordinator))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    async_track_task_devices(hass, entry)
    coordinator.async_start(websocket)
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    return True


async def _async_options_updated(hass: HomeAssistant, entry: ApplianceConfigEntry) -> None:
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: ApplianceConfigEntry) -> bool:
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: ApplianceConfigEntry) -> None:
    """Its repair (another appliance at its address) goes with it."""
    async_clear(hass, entry)
