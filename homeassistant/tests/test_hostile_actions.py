"""A broken or hostile appliance behind the actions, the media browser, the update entity
and the event stream's life (reconnects, credentials refused, a moved websocket)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import voluptuous as vol
from aiohttp import web
from homeassistant.components import media_source
from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_TOKEN,
    CONF_USERNAME,
    EVENT_STATE_CHANGED,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.appliance import api, coordinator
from custom_components.appliance.const import DOMAIN

from .conftest import until
from .fake_appliance import FakeAppliance, fake_entry, loaded, user_form

# --- actions and the media browser ----------------------------------------------------------


def flows(hass: HomeAssistant) -> list[str]:
    """The sources of the integration's flows in progress."""
    return [flow["context"]["source"]
            for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)]


async def asks_for_new_credentials(hass: HomeAssistant, domain: str, service: str,
                                   entity_id: str) -> None:
    """The action on ``entity_id``, refused for the credentials: an error in the
    integration's words, and a reauth flow."""
    with pytest.raises(HomeAssistantError) as refused:
        await hass.services.async_call(domain, service, {"entity_id": entity_id},
                                       blocking=True)
    assert refused.value.translation_key == "invalid_auth"
    await hass.async_block_till_done()
    assert flows(hass) == ["reauth"]

async def test_an_item_id_names_no_other_endpoint(hass: HomeAssistant,
                                                  fake: FakeAppliance) -> None:
    entry = await loaded(hass, fake)
    with pytest.raises(ServiceValidationError, match="not found"):
        await hass.services.async_call(
            DOMAIN, "retry", {"config_entry_id": entry.entry_id,
                              "item_id": "../system/configuration"},
            blocking=True, return_response=True)
    assert fake.paths[-1] == "/api/history/..%2Fsystem%2Fconfiguration"


@pytest.mark.parametrize(("service", "data"), [
    ("add_url", {"url": [f"http://x/{n}" for n in range(1001)]}),
    ("retry", {"item_id": [str(n) for n in range(1001)]}),
    ("cancel", {"item_id": [str(n) for n in range(1001)]}),
    ("retry", {"item_id": "i" * 129}),
    ("cancel", {"item_id": ["a", ""]}),
])
async def test_an_action_past_its_bounds_is_refused_before_any_request(
        hass: HomeAssistant, fake: FakeAppliance, service: str, data: dict[str, Any]) -> None:
    """A template that renders a list of 100,000 ids made as many requests (two each for a
    retry), one after the other, before any answer."""
    entry = await loaded(hass, fake)
    asked = len(fake.paths)
    with pytest.raises(vol.Invalid):
        await hass.services.async_call(DOMAIN, service, {"config_entry_id": entry.entry_id,
                                                         **data}, blocking=True)
    assert len(fake.paths) == asked


async def test_a_retry_of_a_list_is_checked_whole_before_any_is_retried(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    """One download of the list that cannot be retried (finished): the ones before it were
    queued again and their old entries removed, and the error lost their new ids."""
    entry = await loaded(hass, fake)
    fake.answers["/api/history/a"] = {"id": "a", "status": "error", "url": "http://x/a"}
    fake.answers["/api/history/b"] = {"id": "b", "status": "finished"}
    fake.answers["/api/downloads/a/retry"] = {"id": "a2"}
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN, "retry", {"config_entry_id": entry.entry_id, "item_id": ["a", "b"]},
            blocking=True, return_response=True)
    assert refused.value.translation_placeholders == {"id": "b", "status": "finished"}
    assert "/api/downloads/a/retry" not in fake.paths
    answer = await hass.services.async_call(
        DOMAIN, "retry", {"config_entry_id": entry.entry_id, "item_id": ["a"]},
        blocking=True, return_response=True)
    assert answer == {"items": [{"id": "a2", "url": "http://x/a", "retry_of": "a"}]}


async def test_a_status_that_is_no_text_is_not_a_traceback(hass: HomeAssistant,
                                                           fake: FakeAppliance) -> None:
    """An item's status or an update's state that is a list (unhashable): the action says
    what it got, not "unknown error" with a TypeError in the log."""
    entry = await loaded(hass, fake)
    fake.answers["/api/history/x"] = {"id": "x", "status": ["error"] * 1000}
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, "retry", {"config_entry_id": entry.entry_id, "item_id": "x"},
            blocking=True, return_response=True)
    assert raised.value.translation_key == "not_retryable"
    assert len(raised.value.translation_placeholders["status"]) == 255
    fake.answers["/api/system/ytdlp"] = {"installed": "1", "latest": "2",
                                         "update": {"state": ["updated"]}}
    fake.answers["/api/system/ytdlp/update"] = {"state": "running"}
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(HomeAssistantError) as failed:
        await hass.services.async_call("update", "install",
                                       {"entity_id": "update.fake_yt_dlp"}, blocking=True)
    assert failed.value.translation_key == "ytdlp_update_failed"
    assert failed.value.translation_placeholders["state"] == "['updated']"


async def test_a_ytdlp_update_that_outlasts_its_bound_or_is_refused(
        hass: HomeAssistant, fake: FakeAppliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """An update still running when the integration stops following it is an error that
    says so; one refused for the credentials asks for new ones."""
    monkeypatch.setattr(coordinator, "YTDLP_UPDATE_TIMEOUT", 0)
    fake.answers["/api/system/ytdlp"] = {"installed": "1", "latest": "2", "update": {
        "state": "running", "message": "pip runs"}}
    fake.answers["/api/system/ytdlp/update"] = {"state": "running"}
    await loaded(hass, fake)
    with pytest.raises(HomeAssistantError) as failed:
        await hass.services.async_call("update", "install",
                                       {"entity_id": "update.fake_yt_dlp"}, blocking=True)
    assert failed.value.translation_key == "ytdlp_update_failed"
    assert failed.value.translation_placeholders == {"state": "running", "message": "pip runs"}
    fake.answers["/api/system/ytdlp/update"] = lambda _: web.json_response(
        {"error": "Unauthorized", "code": "UNAUTHORIZED"}, status=401)
    await asks_for_new_credentials(hass, "update", "install", "update.fake_yt_dlp")


async def test_a_run_now_refused_for_the_credentials_asks_for_new_ones(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    fake.answers["/api/tasks"] = {"items": [{"id": 4, "name": "Feed"}]}
    fake.answers["/api/tasks/4/execute"] = lambda _: web.json_response(
        {"error": "Unauthorized", "code": "UNAUTHORIZED"}, status=401)
    await loaded(hass, fake)
    await asks_for_new_credentials(hass, "button", "press", "button.feed_run_now")


async def test_a_file_ticket_to_elsewhere_is_not_played(hass: HomeAssistant,
                                                        fake: FakeAppliance) -> None:
    """The player gets a URL on the appliance, never one the appliance's answer points
    elsewhere ("http://host:port@evil.example/…")."""
    entry = await loaded(hass, fake)
    assert await async_setup_component(hass, "media_source", {})
    await hass.async_block_till_done()
    fake.answers["/api/auth/file-ticket"] = {
        "url": "@evil.example/clip.mp4", "playlist": "//evil.example/p.m3u8",
        "mime": "video/mp4"}
    with pytest.raises(media_source.Unresolvable, match="no url path"):
        await media_source.async_resolve_media(
            hass, f"media-source://appliance/{entry.entry_id}/clip.mp4", None)


async def test_a_burst_of_progress_is_a_few_state_changes(hass: HomeAssistant,
                                                          fake: FakeAppliance) -> None:
    """Each change of a sensor is a row in the recorder: a burst of progress events (or a
    flood) is shown as its first and last state, not as every step."""
    await loaded(hass, fake)
    speed = "sensor.fake_download_speed"
    changes = async_capture_events(hass, EVENT_STATE_CHANGED)
    for step in range(1, 201):
        fake.frames.put_nowait(json.dumps({"event": "item_updated", "data": {
            "id": "a", "status": "downloading", "speed": step * 1_000_000}}))
    await until(lambda: hass.states.get(speed).state == "200.0", message="the last speed")
    seen = [e for e in changes if e.data["entity_id"] == speed]
    assert len(seen) < 10, [e.data["new_state"].state for e in seen]


@pytest.mark.parametrize("credentials", [
    {CONF_TOKEN: "abc\r\nX-Injected: 1"}, {CONF_USERNAME: "a:b", CONF_PASSWORD: "pw"},
    {CONF_USERNAME: "ha", CONF_PASSWORD: "pw\nX-Injected: 1"}])
async def test_credentials_that_cannot_be_sent(hass: HomeAssistant, fake: FakeAppliance,
                                               credentials: dict[str, str]) -> None:
    """Refused as credentials, not "Unexpected error", and no header is injected."""
    result = await user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port,
                                     **credentials})
    assert result["errors"] == {"base": "invalid_auth"}
    assert fake.paths == ["/api/health"]  # the open one only: nothing sent them


async def test_a_pasted_token_is_trimmed(hass: HomeAssistant, fake: FakeAppliance) -> None:
    result = await user_form(hass, {CONF_HOST: " 127.0.0.1 ", CONF_PORT: fake.port,
                                     CONF_TOKEN: " the-token\n"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port,
                              CONF_TOKEN: "the-token"}


async def test_streams_that_close_at_once_are_reopened_less_and_less_often(
        hass: HomeAssistant, fake: FakeAppliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each reconnect takes a full snapshot of the service: a service that closes every
    stream at once gets them ever more slowly (to RECONNECT_MAX), not at a steady pace."""
    monkeypatch.setattr(coordinator, "RECONNECT_MIN", 0.01)
    monkeypatch.setattr(coordinator, "RECONNECT_MAX", 0.08)
    fake.close_streams_at_once = True
    entry = fake_entry(hass, fake)
    waits: list[float] = []  # the wait before each stream since setup's, as it opens
    fake.on_stream = lambda: (waits.append(entry.runtime_data.reconnect_delay)
                              if hasattr(entry, "runtime_data") else None)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: fake.streams_opened >= 6, message="six streams")
    assert waits[:4] == [0.02, 0.04, 0.08, 0.08]
    assert entry.runtime_data.reconnect_delay == 0.08


async def test_a_websocket_moved_by_a_restart_is_followed(
        hass: HomeAssistant, fake: FakeAppliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """The person changes the websocket's port (YTP_WS_PORT) and restarts the appliance:
    the stream is looked for where the service says it is now, not where it was at setup
    (tried there for ever, the entities unavailable until Home Assistant restarted)."""
    monkeypatch.setattr(coordinator, "RECONNECT_MIN", 0.01)
    monkeypatch.setattr(coordinator, "RECONNECT_MAX", 0.05)
    old = FakeAppliance()
    await old.start()
    where = {"port": old.port}
    fake.answers["/api/system/configuration"] = lambda _: {
        "queue": [], "websocket": {"port": where["port"], "path": "/ws"}}
    await loaded(hass, fake)
    await until(lambda: old.streams_opened == 1, message="the stream on the old port")
    where["port"] = fake.port
    await old.stop()  # the restart: the old port closed, the stream ended
    await until(lambda: fake.streams_opened >= 1
                and hass.states.get("sensor.fake_active_downloads").state == "0",
                message="the stream on the new port")
    fake.frames.put_nowait(json.dumps({"event": "paused", "data": {}}))
    await until(lambda: hass.states.get("switch.fake_queue_paused").state == "on",
                message="an event on the new stream")


async def test_credentials_refused_at_a_reconnect_ask_for_new_ones(
        hass: HomeAssistant, fake: FakeAppliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """The password changed while the stream was open: its reconnect asks for new ones."""
    monkeypatch.setattr(coordinator, "RECONNECT_MIN", 0.01)
    await loaded(hass, fake)
    fake.answers["/api/system/configuration"] = lambda _: web.json_response(
        {"error": "Unauthorized", "code": "UNAUTHORIZED"}, status=401)
    fake.frames.put_nowait(None)  # the service ends the stream
    await until(lambda: flows(hass) == ["reauth"], message="the reauth flow")


async def test_releases_are_looked_for_again_later(hass: HomeAssistant,
                                                   fake: FakeAppliance) -> None:
    checks: list[str] = []

    def check(request: web.Request) -> Any:
        checks.append(request.path)
        return {"status": "up_to_date"}

    fake.answers["/api/system/check-updates"] = check
    await loaded(hass, fake)
    assert len(checks) == 1
    async_fire_time_changed(hass, dt_util.utcnow() + coordinator.RELEASE_CHECK_INTERVAL
                            + timedelta(seconds=1))
    await until(lambda: len(checks) == 2, message="the next release check")


async def test_a_failed_catch_up_is_tried_again(hass: HomeAssistant, fake: FakeAppliance,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream reconnects but the snapshot that catches up fails (a 503 while the service
    starts): the link is tried again until a snapshot works, and the entities come back."""
    monkeypatch.setattr(coordinator, "RECONNECT_MIN", 0.01)
    await loaded(hass, fake)
    calls = 0

    def starting(_: web.Request) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.json_response({"error": "starting", "code": "UNAVAILABLE"}, status=503)
        return {"failed": 0}

    fake.answers["/api/engine/stats"] = starting
    fake.frames.put_nowait(None)  # the service ends the stream
    await until(lambda: calls >= 2 and hass.states.get("sensor.fake_active_downloads").state
                == "0", message="the entities back after a failed catch-up")


async def test_the_releases_are_kept_across_a_reconnect(hass: HomeAssistant,
                                                         fake: FakeAppliance) -> None:
    """The snapshot after a reconnect keeps what the last release checks said (they run at
    setup and every 12 hours, not at each reconnect): the update entities do not turn
    unknown at every restart of the service."""
    fake.answers["/api/system/ytdlp"] = {"installed": "2025.1.1", "latest": "2025.2.2"}
    fake.answers["/api/system/check-updates"] = {"status": "update_available",
                                                 "new_version": "9.9"}
    await loaded(hass, fake)
    fake.answers["/api/system/ytdlp"] = {"installed": "asked again", "latest": "asked again"}
    fake.frames.put_nowait(None)  # the service ends the stream; Home Assistant catches up
    await until(lambda: fake.streams_opened == 2
                and hass.states.get("update.fake_yt_dlp").state != "unavailable",
                message="the second stream")
    await hass.async_block_till_done()
    ytdlp = hass.states.get("update.fake_yt_dlp").attributes
    assert (ytdlp["installed_version"], ytdlp["latest_version"]) == ("2025.1.1", "2025.2.2")
    release = hass.states.get("update.fake_appliance_release").attributes
    assert release["latest_version"] == "9.9"


async def test_a_stream_whose_service_went_silent_is_given_up(
        hass: HomeAssistant, fake: FakeAppliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """A service gone without a word (its power cut) closes nothing: its pings unanswered,
    the stream is given up and the entities go unavailable, not on showing it as it was."""
    monkeypatch.setattr(api, "WS_HEARTBEAT", 0.2)
    fake.deaf = True
    await loaded(hass, fake)
    await until(lambda: hass.states.get("switch.fake_queue_paused").state == "unavailable",
                message="the silent stream given up")
    fake.deaf = False  # the service back: a stream that answers is kept
    await until(lambda: hass.states.get("switch.fake_queue_paused").state == "off",
                message="the stream back")


async def test_a_request_that_never_ends_is_given_up(
        hass: HomeAssistant, fake: FakeAppliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each request has its own bound (Home Assistant's session would wait five minutes)."""
    monkeypatch.setattr(api, "REQUEST_TIMEOUT", aiohttp.ClientTimeout(total=0.3))

    held = asyncio.Event()

    async def never(_: web.Request) -> Any:
        await held.wait()  # (answered only once the test is over)
        return {}

    fake.answers["/api/health"] = never
    entry = fake_entry(hass, fake)
    try:
        result = await user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
        assert not await hass.config_entries.async_setup(entry.entry_id)
    finally:
        held.set()
    assert result["errors"] == {"base": "cannot_connect"}
    # (it said nothing after the address: a timeout has no text of its own)
    assert entry.reason == (f"Cannot reach the appliance: http://127.0.0.1:{fake.port}: "
                            "no answer in time")


async def test_texts_of_a_hostile_answer_are_cut_where_they_are_shown(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    """A cancel's answer naming a megabyte id, a folder listing's names of megabytes (each
    went whole to every browser showing the folder) and a file without a type, a release
    "available" without a version ("None" was shown as the newest)."""
    fake.answers["/api/system/check-updates"] = {"status": "update_available"}
    entry = await loaded(hass, fake)
    fake.answers["/api/history/cancel"] = {"a": "not found", "b": "ok",
                                           "x" * 1_000_000: "not found"}
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN, "cancel", {"config_entry_id": entry.entry_id, "item_id": ["a", "b"]},
            blocking=True)
    assert refused.value.translation_placeholders == {"ids": "a"}
    assert str(refused.value) == "Not in the queue (nothing to cancel): a"
    many = [f"{n:036d}" for n in range(1000)]  # (the most an action takes)
    fake.answers["/api/history/cancel"] = dict.fromkeys(many, "not found")
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN, "cancel", {"config_entry_id": entry.entry_id, "item_id": many},
            blocking=True)
    ids = refused.value.translation_placeholders["ids"]
    assert len(ids) == 2048 and ids.startswith(f"{many[0]}, {many[1]}") and ids[-1] == "…"

    assert hass.states.get("update.fake_appliance_release").attributes["latest_version"] is None

    assert await async_setup_component(hass, "media_source", {})
    await hass.async_block_till_done()
    fake.answers["/api/file/browser/"] = {"path": "/", "contents": [
        {"name": "n" * 1_000_000, "path": "/long.mp4", "content_type": "video",
         "mime": "video/" + "m" * 1_000_000},
        {"name": "untyped.mp4", "path": "/untyped.mp4", "content_type": "video"}]}
    folder = await media_source.async_browse_media(hass, "media-source://appliance")
    long, untyped = folder.children
    assert long.title == "n" * 254 + "…" and len(long.media_content_type) == 255
    assert untyped.title == "untyped.mp4" and untyped.media_content_type == ""


async def test_diagnostics_of_an_entry_whose_setup_fails(
        hass: HomeAssistant, fake: FakeAppliance, hass_client: ClientSessionGenerator) -> None:
    """When the person most needs them (the entry retried, "cannot connect"): they were an
    error (AttributeError: no runtime data) instead."""
    fake.answers["/api/system/configuration"] = lambda _: web.json_response(
        {"error": "the database is locked", "code": "UNAVAILABLE"}, status=503)
    entry = fake_entry(hass, fake)
    hass.config_entries.async_update_entry(entry, options={"default_preset": "audio"})
    assert await async_setup_component(hass, "diagnostics", {})
    assert not await hass.config_entries.async_setup(entry.entry_id)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["entry"]["options"] == {"default_preset": "audio"}
    assert diagnostics["entry"]["unique_id"] == entry.unique_id
    assert diagnostics["entry"]["state"] == "setup_retry"
    assert diagnostics["entry"]["reason"] == (
        "Cannot reach the appliance: HTTP 503: the database is locked")
    assert diagnostics["connected"] is False
    assert diagnostics["data"] is None and diagnostics["configuration"] is None
