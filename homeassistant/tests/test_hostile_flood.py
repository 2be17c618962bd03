"""A service that floods its event stream with changes that fire no bus event (pause and
resume, the download folder's disk, a task's change, a download cancelled or removed): every
one of them was written to every entity at once, a state (and a recorder row on the Pi's SD
card) each, thousands a second on Home Assistant's loop. They are shown as a download's
progress is: the first at once, the last of a burst at its end."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.appliance import api
from custom_components.appliance.const import EVENT_FINISHED

from .conftest import until
from .fake_appliance import FakeAppliance, loaded

FLOOD = 2000


async def test_a_flood_of_changes_is_shown_coalesced(hass: HomeAssistant,
                                                     fake: FakeAppliance) -> None:
    entry = await loaded(hass, fake)
    changes = async_capture_events(hass, EVENT_STATE_CHANGED)
    for n in range(FLOOD):
        fake.frames.put_nowait(json.dumps({"event": "resumed" if n % 2 else "paused",
                                           "data": {}}))
        fake.frames.put_nowait(json.dumps({"event": "download_folder",
                                           "data": {"problem": f"unmounted {n}" if n % 2
                                                    else ""}}))
        fake.frames.put_nowait(json.dumps({"event": "item_cancelled", "data": {"id": f"{n}"}}))
    fake.frames.put_nowait(json.dumps({"event": "paused", "data": {}}))
    fake.frames.put_nowait(json.dumps({"event": "download_folder",
                                       "data": {"problem": "the last word"}}))
    # the end of the flood: a change that fires a bus event is shown at once
    finished = async_capture_events(hass, EVENT_FINISHED)
    fake.frames.put_nowait(json.dumps({"event": "item_completed", "data": {
        "id": "done", "title": "After the flood"}}))
    await until(lambda: finished, within=60, message="the end of the flood")
    assert hass.states.get("sensor.fake_last_finished").state == "After the flood"
    # what the burst left is what is shown
    await until(lambda: hass.states.get("switch.fake_queue_paused").state == "on"
                and hass.states.get("binary_sensor.fake_download_folder_s_disk")
                .attributes.get("problem") == "the last word", message="the flood's end state")
    switch = [event for event in changes
              if event.data["entity_id"] == "switch.fake_queue_paused"]
    assert 1 <= len(switch) < FLOOD // 10
    assert entry.runtime_data.data.paused is True


async def test_a_large_event_is_read_off_the_event_loop(
        hass: HomeAssistant, fake: FakeAppliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """An event of the stream may be 4 MiB (as an answer may be 32): read on the loop, a
    stream of them took it for a second each on a small box."""
    await loaded(hass, fake)
    on_loop: list[bool] = []

    def loads(text: Any) -> Any:
        on_loop.append(threading.current_thread() is threading.main_thread())
        return json.loads(text)

    monkeypatch.setattr(api, "json", SimpleNamespace(loads=loads))
    fake.frames.put_nowait(json.dumps({"event": "item_completed", "data": {
        "id": "big", "title": "Big", "pad": "x" * api.MAX_ON_LOOP}}))
    fake.frames.put_nowait(json.dumps({"event": "paused", "data": {}}))
    await until(lambda: hass.states.get("switch.fake_queue_paused").state == "on",
                message="the events")
    assert hass.states.get("sensor.fake_last_finished").state == "Big"
    assert on_loop == [False, True]
