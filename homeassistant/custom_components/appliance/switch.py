"""The queue's pause switch (on while the service holds its queue), and a switch per
subscription (on while its task is enabled)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import ApplianceConfigEntry, ApplianceCoordinator, followed_task
from .entity import ApplianceEntity
from .services import call_service
from .subscriptions import ApplianceTaskEntity, async_add_task_entities

# One request at a time per entity is plenty for a queue switch.
PARALLEL_UPDATES = 1

QUEUE_PAUSED = SwitchEntityDescription(key="queue_paused", translation_key="queue_paused")
TASK_ENABLED = SwitchEntityDescription(key="enabled", translation_key="task_enabled")


async def async_setup_entry(hass: HomeAssistant, entry: ApplianceConfigEntry,
                            async_add_entities: AddConfigEntryEntitiesCallback) -> None:
    async_add_entities([ApplianceQueuePaused(entry.runtime_data, QUEUE_PAUSED)])
    async_add_task_entities(entry, async_add_entities, ApplianceTaskEnabled.for_task)


class ApplianceQueuePaused(ApplianceEntity, SwitchEntity):
    @property
    def is_on(self) -> bool:
        return self.coordinator.data.paused

    async def async_turn_on(self, **kwargs: Any) -> None:
        await self._set(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        await self._set(False)

    async def _set(self, paused: bool) -> None:
        await call_service(self.coordinator, self.coordinator.client.set_paused(paused))
        # The service announces the change on the event stream too; show it at once.
        self.coordinator.data.paused = paused
        self.async_write_ha_state()


class ApplianceTaskEnabled(ApplianceTaskEntity, SwitchEntity):
    @classmethod
    def for_task(cls, coordinator: ApplianceCoordinator, task_id: int) -> ApplianceTaskEnabled:
        return cls(coordinator, TASK_ENABLED, task_id)

    @property
    def is_on(self) -> bool:
        return self.task.get("enabled") is True  # ("false", a text, is not on)

    async def async_turn_on(self, **kwargs: Any) -> None:
        await self._set(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        await self._set(False)

    async def _set(self, enabled: bool) -> None:
        coordinator = self.coordinator
        task = await call_service(coordinator,
                                  coordinator.client.set_task_enabled(self.task_id, enabled))
        # The service announces the change on the event stream too; show it at once.
        coordinator.data.tasks[self.task_id] = followed_task(task)
        coordinator.async_update_listeners()
