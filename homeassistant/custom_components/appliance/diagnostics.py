"""Diagnostics: the entry (credentials redacted), the link's state and the service's data."""

from __future__ import annotations

import dataclasses
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD, CONF_TOKEN, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .coordinator import ApplianceConfigEntry, ApplianceCoordinator
from .redaction import without_url_secrets

# yt-dlp's options (the service's, a preset's, an item's) may hold "--password", "--cookies"
# or a "--username": the whole command line goes.
TO_REDACT = {CONF_TOKEN, CONF_PASSWORD, CONF_USERNAME, "auth_username", "cookies", "cli",
             "ytdlp_cli"}


def _redact(value: Any) -> Any:
    return without_url_secrets(async_redact_data(value, TO_REDACT))


async def async_get_config_entry_diagnostics(hass: HomeAssistant, entry: ApplianceConfigEntry
                                             ) -> dict[str, Any]:
    # None while its setup fails and is retried: when the person most needs diagnostics.
    coordinator: ApplianceCoordinator | None = getattr(entry, "runtime_data", None)
    data = dataclasses.asdict(coordinator.data) if coordinator and coordinator.data else None
    error = coordinator.last_exception if coordinator else None
    return {
        "entry": {"data": async_redact_data(dict(entry.data), TO_REDACT),
                  "options": dict(entry.options), "unique_id": entry.unique_id,
                  "state": entry.state.value, "reason": entry.reason},
        "connected": coordinator.last_update_success if coordinator else False,
        "last_error": str(error) if error else None,
        "data": _redact(data) if data else None,
        "configuration": _redact(coordinator.configuration) if coordinator else None,
    }
