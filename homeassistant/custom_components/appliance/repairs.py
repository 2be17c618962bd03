"""The repair of an entry whose address answers as another appliance (``identity.py``): the
person adopts the appliance there. It is proven first: it must accept the entry's
credentials (or new ones given here, for an appliance set up anew, whose token went with
its config folder). Then the entry, its devices and its entities take the new id, and the
entry loads again."""

from __future__ import annotations

import logging
from typing import Any

import voluptuous as vol
from homeassistant.components.repairs import RepairsFlow
from homeassistant.const import CONF_PASSWORD, CONF_TOKEN, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from . import client_for
from .api import ApplianceError, BadAnswer, CannotConnect, InvalidAuth, RequestRefused
from .config_flow import CREDENTIALS, form_credentials
from .const import DOMAIN
from .coordinator import ApplianceConfigEntry
from .identity import async_clear

LOGGER = logging.getLogger(__package__)


async def async_create_fix_flow(hass: HomeAssistant, issue_id: str,
                                data: dict[str, Any] | None) -> RepairsFlow:
    return AdoptApplianceFlow(str((data or {}).get("entry_id")))


class AdoptApplianceFlow(RepairsFlow):
    def __init__(self, entry_id: str) -> None:
        self.entry_id = entry_id
        self._placeholders: dict[str, str] = {"error": ""}

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        return await self.async_step_confirm()

    async def async_step_confirm(self, user_input: dict[str, Any] | None = None
                                 ) -> FlowResult:
        entry: ApplianceConfigEntry | None = self.hass.config_entries.async_get_entry(
            self.entry_id)
        if entry is None or entry.domain != DOMAIN:
            return self.async_abort(reason="entry_gone")
        data = {key: value for key, value in entry.data.items()
                if key not in (CONF_TOKEN, CONF_USERNAME, CONF_PASSWORD)}
        data.update(form_credentials(user_input or {}) or {
            key: entry.data[key] for key in (CONF_TOKEN, CONF_USERNAME, CONF_PASSWORD)
            if key in entry.data})
        client = client_for(self.hass, data)
        errors: dict[str, str] = {}
        found = "?"
        try:
            found = str((await client.health())["instance_id"])
            if found == entry.unique_id:  # back before the person chose
                async_clear(self.hass, entry)
                self.hass.config_entries.async_schedule_reload(entry.entry_id)
                return self.async_abort(reason="not_replaced")
            if self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, found):
                return self.async_abort(reason="already_configured")
            if user_input is not None:
                await client.configuration()  # the proof: it accepts these credentials
        except InvalidAuth:
            errors["base"] = "invalid_auth"
        except CannotConnect:
            errors["base"] = "cannot_connect"
        except RequestRefused as err:
            self._placeholders["error"] = str(err)
            errors["base"] = "refused"
        except (BadAnswer, ApplianceError) as err:
            self._placeholders["error"] = str(err)
            errors["base"] = "not_appliance"
        else:
            if user_input is not None:
                _adopt(self.hass, entry, found, data)
                return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm", data_schema=vol.Schema(CREDENTIALS), errors=errors,
            description_placeholders={**self._placeholders, "title": entry.title,
                                      "address": client.base_url,
                                      "found": found})


def _adopt(hass: HomeAssistant, entry: ApplianceConfigEntry, found: str,
           data: dict[str, Any]) -> None:
    """The entry, its devices and entities keyed on ``found`` instead of the old id (so
    automations on them go on working), then loaded again."""
    old = str(entry.unique_id)
    LOGGER.warning("%s: adopting the appliance now at %s (id %s, was %s)", entry.title,
                   client_for(hass, data).base_url, found, old)
    entities = er.async_get(hass)
    for entity in er.async_entries_for_config_entry(entities, entry.entry_id):
        if entity.unique_id.startswith(old):
            entities.async_update_entity(entity.entity_id,
                                         new_unique_id=found + entity.unique_id[len(old):])
    devices = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(devices, entry.entry_id):
        identifiers = {(domain, found + key[len(old):])
                       if domain == DOMAIN and key.startswith(old) else (domain, key)
                       for domain, key in device.identifiers}
        if identifiers != device.identifiers:
            devices.async_update_device(device.id, new_identifiers=identifiers)
    hass.config_entries.async_update_entry(entry, unique_id=found, data=data)
    hass.config_entries.async_schedule_reload(entry.entry_id)
