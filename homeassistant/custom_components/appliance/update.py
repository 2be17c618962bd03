"""Update entities: the service's own release, when the service checks for releases
(``YTP_CHECK_FOR_UPDATES=true``; it only tells: the service is upgraded where it runs), and
yt-dlp's, which the service installs into its own environment when asked (Install)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.update import (
    UpdateEntity,
    UpdateEntityDescription,
    UpdateEntityFeature,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import capped, mapping
from .const import DOMAIN, MAX_NAME, MAX_TEXT
from .coordinator import ApplianceConfigEntry
from .entity import ApplianceEntity
from .services import call_service

# One install at a time (the service refuses a second one anyway).
PARALLEL_UPDATES = 1

RELEASE = UpdateEntityDescription(
    key="release", translation_key="release", entity_category=EntityCategory.DIAGNOSTIC,
)
YTDLP = UpdateEntityDescription(
    key="ytdlp", translation_key="ytdlp", entity_category=EntityCategory.CONFIG,
)
# How an update the service ran ended, when it did not install the release.
FAILED_STATES = frozenset({"failed", "rolled_back"})


async def async_setup_entry(hass: HomeAssistant, entry: ApplianceConfigEntry,
                            async_add_entities: AddConfigEntryEntitiesCallback) -> None:
    coordinator = entry.runtime_data
    entities: list[UpdateEntity] = []
    if coordinator.data.release is not None:
        entities.append(ApplianceRelease(coordinator, RELEASE))
    if coordinator.data.ytdlp is not None:
        entities.append(ApplianceYtdlp(coordinator, YTDLP))
    async_add_entities(entities)


class ApplianceRelease(ApplianceEntity, UpdateEntity):
    @property
    def installed_version(self) -> str | None:
        return capped(self.coordinator.data.version, MAX_NAME) or None

    @property
    def latest_version(self) -> str | None:
        release = self.coordinator.data.release or {}
        if release.get("status") == "update_available":
            return _known(release.get("new_version"))  # (none named: unknown, not "None")
        if release.get("status") == "up_to_date":
            return self.installed_version
        return None


def _known(version: Any) -> str | None:
    return None if version in (None, "", "unknown") else str(capped(version, MAX_NAME))


class ApplianceYtdlp(ApplianceEntity, UpdateEntity):
    _attr_supported_features = UpdateEntityFeature.INSTALL
    _attr_title = "yt-dlp"

    @property
    def installed_version(self) -> str | None:
        return _known((self.coordinator.data.ytdlp or {}).get("installed"))

    @property
    def latest_version(self) -> str | None:
        """The index's newest; unknown (the index unreachable) is unknown, not "up to date"."""
        return _known((self.coordinator.data.ytdlp or {}).get("latest"))

    async def async_install(self, version: str | None, backup: bool, **kwargs: Any) -> None:
        coordinator = self.coordinator
        status = await call_service(coordinator, coordinator.async_update_ytdlp())
        update = mapping(status.get("update"))
        state = update.get("state")
        # (a state that is no text is no word of the service's: a list was a TypeError)
        if not isinstance(state, str) or state in FAILED_STATES or state == "running":
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="ytdlp_update_failed",
                translation_placeholders={
                    "state": str(capped(state, MAX_NAME)),
                    "message": str(capped(update.get("message") or "", MAX_TEXT))})
