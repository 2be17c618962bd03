"""Subscriptions (the service's scheduled tasks) in Home Assistant, against a real appliance:
a device per task with a switch (enabled) and a button (run now), added and removed as tasks
come and go on the event stream, caught up over REST at setup; the ``run_task`` action."""

from __future__ import annotations

from typing import Any

import pytest
import voluptuous as vol
from homeassistant.components.device_automation import DeviceAutomationType
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_get_device_automations,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.appliance.const import DOMAIN
from support.server import Server, wait_for

from .conftest import in_executor, until

COOKIES = "# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tFALSE\t0\tsid\tsecret-session\n"


def task_entity(hass: HomeAssistant, entry: MockConfigEntry, task_id: int,
                key: str) -> str | None:
    unique_id = f"{entry.unique_id}_task_{task_id}_{key}"
    domain = "switch" if key == "enabled" else "button"
    return er.async_get(hass).async_get_entity_id(domain, DOMAIN, unique_id)


def task_device(hass: HomeAssistant, entry: MockConfigEntry,
                task_id: int) -> dr.DeviceEntry | None:
    return dr.async_get(hass).async_get_device({(DOMAIN, f"{entry.unique_id}_task_{task_id}")})


async def create_task(hass: HomeAssistant, appliance: Server, name: str,
                      **fields: Any) -> dict[str, Any]:
    response = await in_executor(hass, appliance.post, "/api/tasks",
                                 {"name": name, "auto_start": False, **fields})
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()
    return task


async def patch_task(hass: HomeAssistant, appliance: Server, task_id: int,
                     **fields: Any) -> None:
    response = await in_executor(hass, lambda: appliance.request(
        "PATCH", f"/api/tasks/{task_id}", json=fields))
    assert response.status_code == 200, response.text


async def delete_task(hass: HomeAssistant, appliance: Server, task_id: int) -> None:
    response = await in_executor(hass, appliance.request, "DELETE", f"/api/tasks/{task_id}")
    assert response.status_code == 200, response.text


async def test_tasks_come_and_go_with_their_devices(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, appliance: Server,
        media: dict[str, str]) -> None:
    task = await create_task(hass, appliance, "Clips", url=media["clip"])
    switch = await until(lambda: task_entity(hass, loaded_entry, task["id"], "enabled"),
                         message="the task's switch")
    button = task_entity(hass, loaded_entry, task["id"], "run")
    assert switch == "switch.clips_enabled" and button == "button.clips_run_now"
    await until(lambda: hass.states.get(switch), message="the switch's state")
    assert hass.states.get(switch).state == STATE_ON
    assert hass.states.get(switch).attributes["url"] == media["clip"]
    device = task_device(hass, loaded_entry, task["id"])
    appliance_device = dr.async_get(hass).async_get_device({(DOMAIN, loaded_entry.unique_id)})
    assert device is not None and device.name == "Clips"
    assert (device.manufacturer, device.model) == ("appliance", "Subscription")
    assert device.via_device_id == appliance_device.id
    # Its downloads' events carry the appliance's id: a "download finished" trigger on the
    # subscription's device would never fire, so none is offered.
    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER,
                                                  device.id)
    assert [t for t in triggers if t["domain"] == DOMAIN] == []

    # A rename elsewhere reaches the device.
    await patch_task(hass, appliance, task["id"], name="Clips renamed")
    await until(lambda: task_device(hass, loaded_entry, task["id"]).name == "Clips renamed",
                message="the device renamed")

    await delete_task(hass, appliance, task["id"])
    await until(lambda: task_device(hass, loaded_entry, task["id"]) is None,
                message="the task's device removed")
    assert er.async_get(hass).async_get(switch) is None
    assert hass.states.get(switch) is None and hass.states.get(button) is None


async def test_switch_enables_and_button_runs_the_real_task(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, appliance: Server,
        media: dict[str, str]) -> None:
    task = await create_task(hass, appliance, "Short", url=media["short"], folder="tasks")
    switch = await until(lambda: task_entity(hass, loaded_entry, task["id"], "enabled"),
                         message="the task's switch")
    await until(lambda: hass.states.get(switch), message="the switch's state")
    await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True)
    assert hass.states.get(switch).state == STATE_OFF
    served = await in_executor(hass, appliance.get, f"/api/tasks/{task['id']}")
    assert served.json()["enabled"] is False
    await hass.services.async_call("switch", "turn_on", {"entity_id": switch}, blocking=True)
    served = await in_executor(hass, appliance.get, f"/api/tasks/{task['id']}")
    assert served.json()["enabled"] is True

    # Enabled elsewhere: the switch follows the event stream.
    await patch_task(hass, appliance, task["id"], enabled=False)
    await until(lambda: hass.states.get(switch).state == STATE_OFF, message="switch off")

    button = task_entity(hass, loaded_entry, task["id"], "run")
    await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True)

    def queued() -> list[dict[str, Any]]:
        return list(appliance.get(f"/api/tasks/{task['id']}/items").json()["items"])

    [item] = await in_executor(hass, wait_for, queued, 60, 0.1, "the task's run to queue")
    assert item["url"] == media["short"] and item["folder"] == "tasks"
    await delete_task(hass, appliance, task["id"])


async def test_run_task_action(hass: HomeAssistant, loaded_entry: MockConfigEntry,
                               appliance: Server, media: dict[str, str],
                               hass_client: ClientSessionGenerator) -> None:
    task = await create_task(hass, appliance, "Action", url=media["short"], folder="action",
                             cookies=COOKIES)
    # A private feed: its link's user, password and query are secrets as well.
    feed = await create_task(hass, appliance, "Private feed", enabled=False,
                             url="http://me:feed-password@127.0.0.1:9/rss?passkey=feed-key")
    await until(lambda: {task["id"], feed["id"]} <= set(loaded_entry.runtime_data.data.tasks),
                message="the tasks in the coordinator")
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    # Only what the entities show of a task is kept: its cookies are not even held.
    assert "cookies" not in diagnostics["data"]["tasks"][str(task["id"])]
    assert diagnostics["data"]["tasks"][str(task["id"])]["folder"] == "action"
    assert diagnostics["data"]["tasks"][str(feed["id"])]["url"] == "http://127.0.0.1:9/rss"
    for secret in ("secret-session", "feed-password", "feed-key"):
        assert secret not in str(diagnostics)
    # Nor in the feed's entities' attributes, which the recorder keeps.
    switch = await until(lambda: task_entity(hass, loaded_entry, feed["id"], "enabled"),
                         message="the feed's switch")
    await until(lambda: hass.states.get(switch), message="the switch's state")
    assert hass.states.get(switch).attributes["url"] == "http://127.0.0.1:9/rss?passkey=***"
    for secret in ("feed-password", "feed-key"):
        assert secret not in str([state.as_dict() for state in hass.states.async_all()])
    await delete_task(hass, appliance, feed["id"])
    response = await hass.services.async_call(DOMAIN, "run_task", {
        "config_entry_id": loaded_entry.entry_id, "task_id": task["id"]},
        blocking=True, return_response=True)
    assert isinstance(response, dict)
    execution = response["execution"]
    assert execution["task_id"] == task["id"] and execution["trigger"] == "manual"
    await delete_task(hass, appliance, task["id"])
    with pytest.raises(ServiceValidationError, match="Task not found"):
        await hass.services.async_call(DOMAIN, "run_task", {
            "config_entry_id": loaded_entry.entry_id, "task_id": task["id"]}, blocking=True)
    for bad in ("one", -1, 0, "1/../2"):
        with pytest.raises(vol.Invalid):
            await hass.services.async_call(DOMAIN, "run_task", {
                "config_entry_id": loaded_entry.entry_id, "task_id": bad}, blocking=True)


async def test_setup_catches_up_with_tasks_over_rest(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, appliance: Server,
        media: dict[str, str]) -> None:
    """While the entry is unloaded a task goes and another comes: the setup's REST snapshot
    (the same one a reconnect takes) removes the one and adds the other."""
    gone = await create_task(hass, appliance, "Gone", url=media["clip"])
    await until(lambda: task_entity(hass, loaded_entry, gone["id"], "run"),
                message="the first task's entities")
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    await delete_task(hass, appliance, gone["id"])
    new = await create_task(hass, appliance, "New", url=media["short"])
    assert task_device(hass, loaded_entry, gone["id"]) is not None

    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert task_device(hass, loaded_entry, gone["id"]) is None
    assert task_device(hass, loaded_entry, new["id"]) is not None
    button = task_entity(hass, loaded_entry, new["id"], "run")
    assert button is not None
    assert hass.states.get(button).state not in (STATE_UNAVAILABLE, None)
    await delete_task(hass, appliance, new["id"])
