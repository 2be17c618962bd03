"""A hostile appliance's answers nested thousands deep (valid JSON, which Python's parser
reads up to tens of thousands of levels): every value Home Assistant keeps, shows, fires or
hands back stays shallow and short. Before, such a value raised RecursionError wherever it
was turned into text (a state, an attribute, an event's data), copied or redacted
(diagnostics), and an action handed it back to a caller whose JSON writer stops at 255
levels."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_capture_events
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.appliance import api
from custom_components.appliance.const import DOMAIN, EVENT_FINISHED

from .conftest import until
from .fake_appliance import FakeAppliance, loaded

DEPTH = 3000
DEEP = "[" * DEPTH + '"x"' + "]" * DEPTH  # (json.dumps cannot write it: it recurses)


def _raw(text: str) -> Any:
    """An answer of JSON text as it is, made per request."""
    return lambda _: web.Response(text=text, content_type="application/json")


def _depth(value: Any) -> int:
    """How many levels of lists and objects ``value`` has (counted without recursing)."""
    depth, level = 0, [value]
    while any(isinstance(found, list | dict) for found in level):
        level = [item for found in level if isinstance(found, list | dict)
                 for item in (found.values() if isinstance(found, dict) else found)]
        depth += 1
    return depth


async def test_values_nested_thousands_deep(hass: HomeAssistant, fake: FakeAppliance,
                                            hass_client: ClientSessionGenerator) -> None:
    fake.answers["/api/system/configuration"] = _raw(
        '{"app": {"version": "1.0"}, "paused": false, "presets": [], '
        f'"websocket": {{"port": {fake.port}, "path": "/ws"}}, "extra": {DEEP}, '
        f'"queue": [{{"id": "q", "status": "downloading", "speed": {DEEP}}}]}}')
    fake.answers["/api/history"] = _raw(
        f'{{"items": [{{"id": "z", "title": {DEEP}, "url": {DEEP}, "preset": {DEEP}}}]}}')
    fake.answers["/api/tasks"] = _raw(
        f'{{"items": [{{"id": 4, "name": {DEEP}, "url": {DEEP}}}], "pagination": {{}}}}')
    fake.answers["/api/system/check-updates"] = _raw(
        f'{{"status": "update_available", "new_version": {DEEP}, "extra": {DEEP}}}')
    entry = await loaded(hass, fake)
    assert entry.state is ConfigEntryState.LOADED
    last = hass.states.get("sensor.fake_last_finished")
    assert last is not None and last.state.startswith("[[") and len(last.state) <= 255
    assert last.attributes["preset"].startswith("[[")
    assert hass.states.get("sensor.fake_download_speed").state == "0.0"
    release = hass.states.get("update.fake_appliance_release")
    assert release is not None and release.attributes["latest_version"].startswith("[[")

    finished = async_capture_events(hass, EVENT_FINISHED)
    fake.frames.put_nowait(
        f'{{"event": "item_completed", "data": {{"id": "q", "title": {DEEP}, '
        f'"url": "https://example.invalid/v", "extra": {DEEP}}}}}')
    await until(lambda: finished, message="the finished event")
    assert finished[0].data["title"].startswith("[[")
    await until(lambda: hass.states.get("sensor.fake_last_finished").state != last.state
                or hass.states.get("sensor.fake_last_finished").attributes["url"]
                == "https://example.invalid/v", message="the last finished download")

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["connected"] is True
    assert _depth(diagnostics["configuration"]) < 40
    assert _depth(diagnostics["data"]) < 40
    assert len(json.dumps(diagnostics)) < 1_000_000


async def test_an_actions_answer_nested_deep(hass: HomeAssistant, fake: FakeAppliance) -> None:
    """What an action answers (its response, which an automation or the frontend gets as
    JSON) is shallow, however deep the service's answer."""
    fake.answers["/api/tasks/4/execute"] = _raw(f'{{"id": 9, "output": {DEEP}}}')
    fake.answers["/api/history"] = lambda request: (
        web.Response(text=f'[{{"id": {DEEP}, "url": {DEEP}, "status": "pending"}}]',
                     content_type="application/json")
        if request.method == "POST" else web.json_response({"items": []}))
    entry = await loaded(hass, fake)
    run = await hass.services.async_call(
        DOMAIN, "run_task", {"config_entry_id": entry.entry_id, "task_id": 4},
        blocking=True, return_response=True)
    assert run["execution"]["id"] == 9
    assert _depth(run) < 40
    json.dumps(run)
    added = await hass.services.async_call(
        DOMAIN, "add_url", {"config_entry_id": entry.entry_id, "url": "https://x.invalid/v"},
        blocking=True, return_response=True)
    assert added["items"][0]["status"] == "pending"
    assert _depth(added) < 40
    json.dumps(added)


def test_what_lies_past_the_bound_is_an_ellipsis() -> None:
    nested: Any = "x"
    for _ in range(50):
        nested = {"k": [nested]}
    cut = api.shallow(nested)
    assert _depth(cut) == api.MAX_DEPTH
    for _ in range(api.MAX_DEPTH // 2):
        cut = cut["k"][0]
    assert cut == "…"
    assert api.shallow(nested, 3) == {"k": [{"k": "…"}]}
    assert api.shallow("text", 0) == "text"
