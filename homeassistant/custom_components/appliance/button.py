"""A "run now" button per subscription: starts a run of its task at once."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import ApplianceConfigEntry, ApplianceCoordinator
from .services import call_service
from .subscriptions import ApplianceTaskEntity, async_add_task_entities

# A press is one request; one at a time per button.
PARALLEL_UPDATES = 1

RUN_TASK = ButtonEntityDescription(key="run", translation_key="run_task")


async def async_setup_entry(hass: HomeAssistant, entry: ApplianceConfigEntry,
                            async_add_entities: AddConfigEntryEntitiesCallback) -> None:
    async_add_task_entities(entry, async_add_entities, ApplianceRunTask.for_task)


class ApplianceRunTask(ApplianceTaskEntity, ButtonEntity):
    @classmethod
    def for_task(cls, coordinator: ApplianceCoordinator, task_id: int) -> ApplianceRunTask:
        return cls(coordinator, RUN_TASK, task_id)

    async def async_press(self) -> None:
        await call_service(self.coordinator, self.coordinator.client.run_task(self.task_id))
