"""The base entity: one device per appliance, identified by the service's instance id."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN, MANUFACTURER
from .coordinator import ApplianceCoordinator


class ApplianceEntity(CoordinatorEntity[ApplianceCoordinator]):
    _attr_has_entity_name = True

    def __init__(self, coordinator: ApplianceCoordinator,
                 description: EntityDescription) -> None:
        super().__init__(coordinator)
        self.entity_description = description
        instance_id = coordinator.config_entry.unique_id
        assert instance_id is not None
        self._attr_unique_id = f"{instance_id}_{description.key}"
        client = coordinator.client
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, instance_id)},
            name=coordinator.config_entry.title,
            manufacturer=MANUFACTURER,
            model="Media downloader",
            sw_version=coordinator.data.version,
            entry_type=DeviceEntryType.SERVICE,
            configuration_url=client.base_url + "/api/",
        )
