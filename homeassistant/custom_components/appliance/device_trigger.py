"""Device triggers: a download on this appliance finished, failed or was queued.

They are the integration's bus events, matched on the device's instance id.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.components.device_automation import DEVICE_TRIGGER_BASE_SCHEMA
from homeassistant.components.device_automation.exceptions import (
    InvalidDeviceAutomationConfig,
)
from homeassistant.components.homeassistant.triggers import event as event_trigger
from homeassistant.const import (
    CONF_DEVICE_ID,
    CONF_DOMAIN,
    CONF_EVENT_DATA,
    CONF_PLATFORM,
    CONF_TYPE,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN, TRIGGER_EVENTS
from .subscriptions import TASK_KEY

TRIGGER_SCHEMA = DEVICE_TRIGGER_BASE_SCHEMA.extend(
    {vol.Required(CONF_TYPE): vol.In(TRIGGER_EVENTS)}
)


def _instance_id(hass: HomeAssistant, device_id: str) -> str | None:
    """The appliance's instance id, or None for another device (a subscription's: its
    downloads' events carry the appliance's id, so a trigger on it would never fire)."""
    device = dr.async_get(hass).async_get(device_id)
    for domain, identifier in device.identifiers if device else ():
        if domain == DOMAIN and TASK_KEY not in identifier:
            return identifier
    return None


def _appliance(hass: HomeAssistant, device_id: str) -> str:
    if (instance_id := _instance_id(hass, device_id)) is None:
        raise InvalidDeviceAutomationConfig(f"device {device_id} is not an appliance")
    return instance_id


async def async_validate_trigger_config(hass: HomeAssistant, config: ConfigType
                                        ) -> ConfigType:
    config = TRIGGER_SCHEMA(config)
    _appliance(hass, config[CONF_DEVICE_ID])
    return config


async def async_get_triggers(hass: HomeAssistant, device_id: str) -> list[dict[str, Any]]:
    if _instance_id(hass, device_id) is None:
        return []
    return [
        {CONF_PLATFORM: "device", CONF_DEVICE_ID: device_id, CONF_DOMAIN: DOMAIN,
         CONF_TYPE: trigger_type}
        for trigger_type in TRIGGER_EVENTS
    ]


async def async_attach_trigger(hass: HomeAssistant, config: ConfigType,
                               action: TriggerActionType, trigger_info: TriggerInfo
                               ) -> CALLBACK_TYPE:
    event_config = event_trigger.TRIGGER_SCHEMA({
        CONF_PLATFORM: "event",
        event_trigger.CONF_EVENT_TYPE: TRIGGER_EVENTS[config[CONF_TYPE]],
        CONF_EVENT_DATA: {
            "instance_id": _appliance(hass, config[CONF_DEVICE_ID]),
        },
    })
    return await event_trigger.async_attach_trigger(
        hass, event_config, action, trigger_info, platform_type="device")
