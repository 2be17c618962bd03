"""The base entity: one device per appliance, identified by the service's instance id."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .api import capped
from .const import DOMAIN, MANUFACTURER, MAX_NAME
from .coordinator import ApplianceCoordinator


def appliance_device(coordinator: ApplianceCoordinator) -> DeviceInfo:
    """The appliance's device, which its entities belong to and its subscriptions' devices
    hang under."""
    instance_id = coordinator.config_entry.unique_id
    assert instance_id is not None
    return DeviceInfo(
        identifiers={(DOMAIN, instance_id)},
        name=coordinator.config_entry.title,
        manufacturer=MANUFACTURER,
        model="Media downloader",
        sw_version=capped(coordinator.data.version, MAX_NAME),
        entry_type=DeviceEntryType.SERVICE,
        configuration_url=coordinator.client.base_url + "/api/",
    )


class ApplianceEntity(CoordinatorEntity[ApplianceCoordinator]):
    _attr_has_entity_name = True

    def __init__(self, coordinator: ApplianceCoordinator,
                 description: EntityDescription) -> None:
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{coordinator.config_entry.unique_id}_{description.key}"
        self._attr_device_info = appliance_device(coordinator)
