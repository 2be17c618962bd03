"""Subscriptions (the service's scheduled tasks) as devices of their own, under the
appliance's device: each with a switch (enabled) and a button (run now). They come and go
with the tasks: added when a task appears (the snapshot, or a ``config_update`` of feature
``tasks`` on the event stream), removed with their device when it goes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .api import capped
from .const import DOMAIN, MANUFACTURER, MAX_DEVICE_NAME, MAX_TEXT
from .coordinator import ApplianceConfigEntry, ApplianceCoordinator
from .redaction import shown_url

TASK_KEY = "_task_"


def task_device_key(instance_id: str, task_id: int) -> str:
    return f"{instance_id}{TASK_KEY}{task_id}"


def task_name(task: dict[str, Any], task_id: int) -> str:
    """The name of a task's device: the task's, cut to what a name holds."""
    return str(capped(task.get("name") or f"Task {task_id}", MAX_DEVICE_NAME))


class ApplianceTaskEntity(CoordinatorEntity[ApplianceCoordinator]):
    """An entity of one subscription; unavailable once the task is gone."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: ApplianceCoordinator, description: EntityDescription,
                 task_id: int) -> None:
        super().__init__(coordinator)
        self.entity_description = description
        self.task_id = task_id
        instance_id = coordinator.config_entry.unique_id
        assert instance_id is not None
        key = task_device_key(instance_id, task_id)
        self._attr_unique_id = f"{key}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, key)},
            name=task_name(self.task, task_id),
            manufacturer=MANUFACTURER,
            model="Subscription",
            entry_type=DeviceEntryType.SERVICE,
            via_device=(DOMAIN, instance_id),
        )

    @property
    def task(self) -> dict[str, Any]:
        return self.coordinator.data.tasks.get(self.task_id) or {}

    @property
    def available(self) -> bool:
        return super().available and self.task_id in self.coordinator.data.tasks

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        task = self.task
        # (the recorder keeps attributes: a private feed's password or passkey stays out)
        return {"task_id": self.task_id,
                "url": capped(shown_url(task.get("url")), MAX_TEXT),
                **{key: capped(task.get(key), MAX_TEXT) for key in ("timer", "preset", "folder")}}


def async_add_task_entities(entry: ApplianceConfigEntry,
                            async_add_entities: AddConfigEntryEntitiesCallback,
                            make: Callable[[ApplianceCoordinator, int], Entity]) -> None:
    """Add ``make(coordinator, task_id)`` for each task now and for each that appears."""
    coordinator = entry.runtime_data
    known: set[int] = set()

    @callback
    def add_new() -> None:
        tasks = coordinator.data.tasks
        known.intersection_update(tasks)
        new = [task_id for task_id in tasks if task_id not in known]
        known.update(new)
        if new:
            async_add_entities(make(coordinator, task_id) for task_id in new)

    add_new()
    entry.async_on_unload(coordinator.async_add_listener(add_new))


def _task_id(key: str, prefix: str) -> int | None:
    """The task id a device key names, or None for another device (the appliance's)."""
    rest = key.removeprefix(prefix)
    return int(rest) if rest != key and rest.isdigit() else None


@callback
def async_sync_task_devices(hass: HomeAssistant, entry: ApplianceConfigEntry) -> None:
    """Remove the devices (and so the entities) of tasks that are gone; follow renames."""
    tasks = entry.runtime_data.data.tasks
    prefix = task_device_key(str(entry.unique_id), 0).removesuffix("0")
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        ids = [task_id for domain, key in device.identifiers
               if domain == DOMAIN and (task_id := _task_id(key, prefix)) is not None]
        if not ids:
            continue
        task = tasks.get(ids[0])
        if task is None:
            registry.async_update_device(device.id, remove_config_entry_id=entry.entry_id)
        elif task.get("name") and device.name != (name := task_name(task, ids[0])):
            registry.async_update_device(device.id, name=name)


def async_track_task_devices(hass: HomeAssistant, entry: ApplianceConfigEntry) -> None:
    """Keep the task devices in step with the tasks for the entry's lifetime."""
    async_sync_task_devices(hass, entry)
    entry.async_on_unload(entry.runtime_data.async_add_listener(
        lambda: async_sync_task_devices(hass, entry)))
