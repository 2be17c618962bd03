"""An update entity for the service's own release, when the service checks for releases
(``YTP_CHECK_FOR_UPDATES=true``). It only tells: the service is upgraded where it runs."""

from __future__ import annotations

from homeassistant.components.update import UpdateEntity, UpdateEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import ApplianceConfigEntry
from .entity import ApplianceEntity

PARALLEL_UPDATES = 0

RELEASE = UpdateEntityDescription(
    key="release", translation_key="release", entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(hass: HomeAssistant, entry: ApplianceConfigEntry,
                            async_add_entities: AddConfigEntryEntitiesCallback) -> None:
    coordinator = entry.runtime_data
    if coordinator.data.release is not None:
        async_add_entities([ApplianceRelease(coordinator, RELEASE)])


class ApplianceRelease(ApplianceEntity, UpdateEntity):
    @property
    def installed_version(self) -> str | None:
        return self.coordinator.data.version or None

    @property
    def latest_version(self) -> str | None:
        release = self.coordinator.data.release or {}
        if release.get("status") == "update_available":
            return str(release.get("new_version"))
        if release.get("status") == "up_to_date":
            return self.installed_version
        return None
