"""Actions: ``add_url`` (answers with the queued items), ``cancel``, ``retry``, ``run_task``.

Registered once in ``async_setup``; each names the config entry (the appliance) it acts on.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util.json import JsonValueType

from .api import BadAnswer, CannotConnect, InvalidAuth, RequestRefused, capped, shallow
from .const import (
    CONF_DEFAULT_PRESET,
    DEFAULT_PRESET,
    DOMAIN,
    MAX_ID,
    MAX_LIST,
    MAX_NAME,
    MAX_TEXT,
    RETRYABLE_STATUSES,
)

if TYPE_CHECKING:
    from .coordinator import ApplianceCoordinator


ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_URL = "url"
ATTR_PRESET = "preset"
ATTR_FOLDER = "folder"
ATTR_AUTO_START = "auto_start"
ATTR_ITEM_ID = "item_id"
ATTR_TASK_ID = "task_id"

_ENTRY: dict[vol.Marker, Any] = {vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string}
ADD_URL_SCHEMA = vol.Schema({
    **_ENTRY,
    vol.Required(ATTR_URL): vol.All(cv.ensure_list, [cv.string],
                                    vol.Length(min=1, max=MAX_LIST)),
    vol.Optional(ATTR_PRESET): cv.string,
    vol.Optional(ATTR_FOLDER): cv.string,
    vol.Optional(ATTR_AUTO_START, default=True): cv.boolean,
})
ITEMS_SCHEMA = vol.Schema({
    **_ENTRY,
    vol.Required(ATTR_ITEM_ID): vol.All(
        cv.ensure_list, [vol.All(cv.string, vol.Length(min=1, max=MAX_ID))],
        vol.Length(min=1, max=MAX_LIST)),
})
TASK_SCHEMA = vol.Schema({**_ENTRY, vol.Required(ATTR_TASK_ID): vol.All(
    vol.Coerce(int), vol.Range(min=1, max=2**31 - 1))})


def _coordinator(hass: HomeAssistant, call: ServiceCall) -> ApplianceCoordinator:
    entry_id = call.data[ATTR_CONFIG_ENTRY_ID]
    entry = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="unknown_entry",
                                     translation_placeholders={"entry": entry_id})
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="not_loaded",
                                     translation_placeholders={"entry": entry.title})
    coordinator: ApplianceCoordinator = entry.runtime_data
    return coordinator


async def call_service[T](coordinator: ApplianceCoordinator, request: Awaitable[T]) -> T:
    """Await a request to the service; its failures become Home Assistant's errors."""
    try:
        return await request
    except InvalidAuth as err:
        coordinator.config_entry.async_start_reauth(coordinator.hass)
        raise HomeAssistantError(translation_domain=DOMAIN,
                                 translation_key="invalid_auth") from err
    except CannotConnect as err:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="cannot_connect",
                                 translation_placeholders={"error": str(err)}) from err
    except BadAnswer as err:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="bad_answer",
                                 translation_placeholders={"error": str(err)}) from err
    except RequestRefused as err:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="refused",
                                     translation_placeholders={"error": str(err)}) from err


async def _add_url(call: ServiceCall) -> ServiceResponse:
    coordinator = _coordinator(call.hass, call)
    options = coordinator.config_entry.options
    common: dict[str, Any] = {
        "preset": call.data.get(ATTR_PRESET) or options.get(CONF_DEFAULT_PRESET, DEFAULT_PRESET),
        "auto_start": call.data[ATTR_AUTO_START],
    }
    if ATTR_FOLDER in call.data:
        common["folder"] = call.data[ATTR_FOLDER]
    payloads = [{"url": url, **common} for url in call.data[ATTR_URL]]
    items = await call_service(coordinator, coordinator.client.add(payloads))
    return {"items": [shallow({"id": i.get("id"), "url": i.get("url"),
                               "status": i.get("status")}) for i in items]}


async def _cancel(call: ServiceCall) -> None:
    coordinator = _coordinator(call.hass, call)
    results = await call_service(coordinator, coordinator.client.cancel(call.data[ATTR_ITEM_ID]))
    # (the ids asked for: the answer's own keys are the service's word, of any size)
    missing = [item_id for item_id in call.data[ATTR_ITEM_ID]
               if results.get(item_id) == "not found"]
    if missing:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="not_cancelled",
            translation_placeholders={"ids": str(capped(", ".join(missing), MAX_TEXT))})


async def _retry(call: ServiceCall) -> ServiceResponse:
    """A failed or cancelled download queued again with what it had; the old entry goes.
    The service's own retry does it: it alone knows the whole request (a download's cookies
    are never shown to a client), and adding and removing are one step there."""
    coordinator = _coordinator(call.hass, call)
    client = coordinator.client
    # Every one checked before any is retried: a list with one that cannot be (finished, or
    # unknown) was refused after the ones before it had been queued again and their old
    # entries removed, and the answer naming their new ids was lost.
    items = []
    for item_id in call.data[ATTR_ITEM_ID]:
        item = await call_service(coordinator, client.item(item_id))
        status = item.get("status")
        if not isinstance(status, str) or status not in RETRYABLE_STATUSES:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="not_retryable",
                translation_placeholders={"id": str(capped(item_id, MAX_NAME)),
                                          "status": str(capped(status, MAX_NAME))})
        items.append((item_id, item))
    retried: list[JsonValueType] = []
    for item_id, item in items:
        new_id = await call_service(coordinator, client.retry(item_id))
        retried.append(shallow({"id": new_id, "url": item.get("url"), "retry_of": item_id}))
    return {"items": retried}


async def _run_task(call: ServiceCall) -> ServiceResponse:
    """A subscription run now, as its "run now" button does; answers the run as it starts."""
    coordinator = _coordinator(call.hass, call)
    execution = await call_service(
        coordinator, coordinator.client.run_task(call.data[ATTR_TASK_ID]))
    return {"execution": shallow(execution)}


def async_setup_services(hass: HomeAssistant) -> None:
    hass.services.async_register(DOMAIN, "add_url", _add_url, schema=ADD_URL_SCHEMA,
                                 supports_response=SupportsResponse.OPTIONAL)
    hass.services.async_register(DOMAIN, "cancel", _cancel, schema=ITEMS_SCHEMA)
    hass.services.async_register(DOMAIN, "retry", _retry, schema=ITEMS_SCHEMA,
                                 supports_response=SupportsResponse.OPTIONAL)
    hass.services.async_register(DOMAIN, "run_task", _run_task, schema=TASK_SCHEMA,
                                 supports_response=SupportsResponse.OPTIONAL)
