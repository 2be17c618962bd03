"""A binary sensor that is on while anything downloads."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import ApplianceConfigEntry
from .entity import ApplianceEntity

PARALLEL_UPDATES = 0

DOWNLOADING = BinarySensorEntityDescription(
    key="downloading", translation_key="downloading",
    device_class=BinarySensorDeviceClass.RUNNING,
)


async def async_setup_entry(hass: HomeAssistant, entry: ApplianceConfigEntry,
                            async_add_entities: AddConfigEntryEntitiesCallback) -> None:
    async_add_entities([ApplianceDownloading(entry.runtime_data, DOWNLOADING)])


class ApplianceDownloading(ApplianceEntity, BinarySensorEntity):
    @property
    def is_on(self) -> bool:
        return self.coordinator.data.active > 0
