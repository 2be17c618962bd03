"""A service that floods its event stream (pause and resume, the download folder's disk, a
task's change, downloads added, finished, failed, cancelled or removed: a bulk add of 2,000
links is 2,000 ``item_added``): every change was written to every entity at once, a state
(and a recorder row on the Pi's SD card) each, thousands a second on Home Assistant's loop.
They are shown as a download's progress is: the first at once, the last of a burst at its
end. The bus events automations use stay one per download."""

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
from custom_components.appliance.const import EVENT_FAILED, EVENT_FINISHED, EVENT_QUEUED

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
    finished = async_capture_events(hass, EVENT_FINISHED)
    fake.frames.put_nowait(json.dumps({"event": "item_completed", "data": {
        "id": "done", "title": "After the flood"}}))
    await until(lambda: finished, within=60, message="the end of the flood")
    await until(lambda: hass.states.get("sensor.fake_last_finished").state
                == "After the flood", message="the last download shown")
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
    on_loop: list[tuple[bool, bool]] = []  # (large, read on the loop)

    def loads(text: Any) -> Any:
        on_loop.append((len(text) > api.MAX_ON_LOOP,
                        threading.current_thread() is threading.main_thread()))
        return json.loads(text)

    monkeypatch.setattr(api, "json", SimpleNamespace(loads=loads))
    fake.frames.put_nowait(json.dumps({"event": "item_completed", "data": {
        "id": "big", "title": "Big", "pad": "x" * api.MAX_ON_LOOP}}))
    fake.frames.put_nowait(json.dumps({"event": "paused", "data": {}}))
    await until(lambda: hass.states.get("switch.fake_queue_paused").state == "on",
                message="the events")
    assert hass.states.get("sensor.fake_last_finished").state == "Big"
    # (and the counters' answers read after a finished download, small: on the loop)
    assert on_loop[:2] == [(True, False), (False, True)]
    assert all(large is not read_on_loop for large, read_on_loop in on_loop)


async def test_a_flood_of_downloads_fires_each_and_writes_the_states_coalesced(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    """2,000 links added at once, then each finished or failed: 2,000 bus events of each
    kind, in order, each with its download's data; the sensors written a few times."""
    await loaded(hass, fake)
    changes = async_capture_events(hass, EVENT_STATE_CHANGED)
    fired = {kind: async_capture_events(hass, kind)
             for kind in (EVENT_QUEUED, EVENT_FINISHED, EVENT_FAILED)}
    for n in range(FLOOD):
        fake.frames.put_nowait(json.dumps({"event": "item_added", "data": {
            "id": f"i{n}", "status": "pending", "title": f"Added {n}"}}))
    await until(lambda: len(fired[EVENT_QUEUED]) == FLOOD, within=60, message="the adds")
    await until(lambda: hass.states.get("sensor.fake_queued_downloads").state == str(FLOOD),
                message="the queue shown whole")
    for n in range(FLOOD):
        fake.frames.put_nowait(json.dumps({"event": "item_completed" if n % 2
                                           else "item_error", "data": {
            "id": f"i{n}", "status": "finished" if n % 2 else "error",
            "title": f"Done {n}"}}))
    await until(lambda: len(fired[EVENT_FINISHED]) + len(fired[EVENT_FAILED]) == FLOOD,
                within=60, message="the ends")
    await until(lambda: hass.states.get("sensor.fake_queued_downloads").state == "0"
                and hass.states.get("sensor.fake_last_finished").state == f"Done {FLOOD - 1}",
                message="the ends shown")
    assert [event.data["id"] for event in fired[EVENT_QUEUED]] == [
        f"i{n}" for n in range(FLOOD)]
    assert [event.data["title"] for event in fired[EVENT_FINISHED]] == [
        f"Done {n}" for n in range(1, FLOOD, 2)]
    assert [event.data["id"] for event in fired[EVENT_FAILED]] == [
        f"i{n}" for n in range(0, FLOOD, 2)]
    for entity_id in ("sensor.fake_queued_downloads", "sensor.fake_last_finished"):
        written = [event for event in changes if event.data["entity_id"] == entity_id]
        assert 1 <= len(written) < FLOOD // 10, (entity_id, len(written))


async def test_a_lone_download_is_shown_before_its_automations_run(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    """Not in a burst of downloads, a finished download's sensors are written before its bus
    event fires, even just after its progress (a burst of changes of another kind): an
    automation that reads them finds the download the event names."""
    await loaded(hass, fake)
    seen: list[tuple[str, str]] = []
    hass.bus.async_listen(EVENT_FINISHED, lambda _event: seen.append((
        hass.states.get("sensor.fake_last_finished").state,
        hass.states.get("sensor.fake_active_downloads").state)))
    for speed in (1000, 2000, 3000):
        fake.frames.put_nowait(json.dumps({"event": "item_updated", "data": {
            "id": "one", "status": "downloading", "speed": speed}}))
    fake.frames.put_nowait(json.dumps({"event": "item_completed", "data": {
        "id": "one", "title": "The only one", "status": "finished"}}))
    await until(lambda: seen, message="the automation")
    assert seen == [("The only one", "0")]
