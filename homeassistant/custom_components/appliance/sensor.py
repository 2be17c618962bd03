"""Sensors: downloads running, waiting and failed, total speed, free disk, last finished."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfDataRate, UnitOfInformation
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import capped
from .const import MAX_NAME, MAX_TEXT
from .coordinator import ApplianceConfigEntry, ApplianceData
from .entity import ApplianceEntity
from .redaction import shown_url

# Push updates: entities do not poll, so nothing to limit.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class ApplianceSensorDescription(SensorEntityDescription):
    value: Callable[[ApplianceData], Any]
    attributes: Callable[[ApplianceData], dict[str, Any]] | None = None


def _title(data: ApplianceData) -> str | None:
    """The last finished download's title, cut to what a state holds (a longer one, such as
    a Reddit post's, would leave the sensor "unknown" and its attributes gone)."""
    title = (data.last_finished or {}).get("title")
    return str(capped(title, MAX_NAME)) if title else None


def _last_finished_attributes(data: ApplianceData) -> dict[str, Any]:
    item = data.last_finished or {}
    return {"url": capped(shown_url(item.get("url")), MAX_TEXT),  # (kept by the recorder)
            **{key: capped(item.get(key), MAX_TEXT)
               for key in ("filename", "preset", "finished_at")}}


SENSORS: tuple[ApplianceSensorDescription, ...] = (
    ApplianceSensorDescription(
        key="active", translation_key="active", state_class=SensorStateClass.MEASUREMENT,
        value=lambda data: data.active,
    ),
    ApplianceSensorDescription(
        key="queued", translation_key="queued", state_class=SensorStateClass.MEASUREMENT,
        value=lambda data: data.queued,
    ),
    ApplianceSensorDescription(
        key="failed", translation_key="failed", state_class=SensorStateClass.MEASUREMENT,
        value=lambda data: data.failed,
    ),
    ApplianceSensorDescription(
        key="speed", translation_key="speed", device_class=SensorDeviceClass.DATA_RATE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfDataRate.BYTES_PER_SECOND,
        suggested_unit_of_measurement=UnitOfDataRate.MEGABYTES_PER_SECOND,
        suggested_display_precision=1, value=lambda data: data.speed,
    ),
    ApplianceSensorDescription(
        key="disk_free", translation_key="disk_free", device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIGABYTES,
        suggested_display_precision=1, entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False, value=lambda data: data.disk_free,
    ),
    ApplianceSensorDescription(
        key="last_finished", translation_key="last_finished",
        value=_title,
        attributes=_last_finished_attributes,
    ),
)


async def async_setup_entry(hass: HomeAssistant, entry: ApplianceConfigEntry,
                            async_add_entities: AddConfigEntryEntitiesCallback) -> None:
    coordinator = entry.runtime_data
    async_add_entities(ApplianceSensor(coordinator, description) for description in SENSORS)


class ApplianceSensor(ApplianceEntity, SensorEntity):
    entity_description: ApplianceSensorDescription

    @property
    def native_value(self) -> Any:
        return self.entity_description.value(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        attributes = self.entity_description.attributes
        return attributes(self.coordinator.data) if attributes else None
