"""Whether the address an entry names still answers as the entry's appliance, and the
repair issue that says when it does not.

An appliance whose config folder was lost (a new disk, a reinstall) comes back at the same
address with a new instance id, and the id is what the entry (and its devices) are keyed on.
Anyone else who gets that address (a router's new lease, a stranger's service) answers with
another id too. Either way the entry's credentials are not sent there: its entities are
unavailable and a repair issue lets the person adopt the appliance there, proven with
credentials it accepts (``repairs.py``).
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .api import ApplianceClient, OtherAppliance, capped
from .const import DOMAIN, MAX_NAME

ISSUE = "other_appliance"


def issue_id(entry: ConfigEntry) -> str:
    return f"{ISSUE}_{entry.entry_id}"


async def async_check_identity(hass: HomeAssistant, entry: ConfigEntry,
                               client: ApplianceClient) -> dict[str, Any]:
    """The open ``/api/health`` (asked without credentials) when the address answers as the
    entry's appliance; the issue goes then. Else :class:`OtherAppliance`, and the issue."""
    health = await client.health()
    found = str(health["instance_id"])
    if found == entry.unique_id:
        ir.async_delete_issue(hass, DOMAIN, issue_id(entry))
        return health
    ir.async_create_issue(
        hass, DOMAIN, issue_id(entry), is_fixable=True, is_persistent=False,
        severity=ir.IssueSeverity.ERROR, translation_key=ISSUE,
        translation_placeholders={"title": str(capped(entry.title, MAX_NAME)),
                                  "address": client.base_url, "found": found},
        data={"entry_id": entry.entry_id})
    raise OtherAppliance(found)


@callback
def async_clear(hass: HomeAssistant, entry: ConfigEntry) -> None:
    ir.async_delete_issue(hass, DOMAIN, issue_id(entry))
