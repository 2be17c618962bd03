"""Binary sensors: on while anything downloads; a problem while the download folder's disk is
not there (no download starts then)."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import capped
from .const import MAX_TEXT
from .coordinator import ApplianceConfigEntry
from .entity import ApplianceEntity

PARALLEL_UPDATES = 0

DOWNLOADING = BinarySensorEntityDescription(
    key="downloading", translation_key="downloading",
    device_class=BinarySensorDeviceClass.RUNNING,
)
DOWNLOAD_FOLDER_PROBLEM = BinarySensorEntityDescription(
    key="download_folder_problem", translation_key="download_folder_problem",
    device_class=BinarySensorDeviceClass.PROBLEM, entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(hass: HomeAssistant, entry: ApplianceConfigEntry,
                            async_add_entities: AddConfigEntryEntitiesCallback) -> None:
    async_add_entities([ApplianceDownloading(entry.runtime_data, DOWNLOADING),
                        ApplianceFolderProblem(entry.runtime_data, DOWNLOAD_FOLDER_PROBLEM)])


class ApplianceDownloading(ApplianceEntity, BinarySensorEntity):
    @property
    def is_on(self) -> bool:
        return self.coordinator.data.active > 0


class ApplianceFolderProblem(ApplianceEntity, BinarySensorEntity):
    """On while the service holds downloads back because the download folder's disk is not
    mounted (or the folder is missing); the service's words in ``problem``."""

    @property
    def is_on(self) -> bool:
        return self.coordinator.data.folder_problem is not None

    @property
    def extra_state_attributes(self) -> dict[str, str | None]:
        return {"problem": capped(self.coordinator.data.folder_problem, MAX_TEXT)}
