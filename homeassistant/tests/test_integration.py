"""The integration against a real appliance: entities that move while real downloads run,
the pause switch holding the real queue, actions, bus events and device triggers,
diagnostics, unload and reload, a restart of the service, reauth after a new token."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from homeassistant.components import automation
from homeassistant.components.device_automation import DeviceAutomationType
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_TOKEN, STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_get_device_automations,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.appliance import api
from custom_components.appliance.const import (
    DOMAIN,
    EVENT_FAILED,
    EVENT_FINISHED,
    EVENT_QUEUED,
)
from support.server import Server, free_port_pair

from .conftest import (
    CLI_SECRET,
    NEWER_RELEASE,
    appliance_cli,
    entry_data,
    in_executor,
    instance_id,
    load_entry,
    unload_entry,
    until,
)

ACTIVE = "sensor.appliance_127_0_0_1_active_downloads"
QUEUED = "sensor.appliance_127_0_0_1_queued_downloads"
FAILED = "sensor.appliance_127_0_0_1_failed_downloads"
SPEED = "sensor.appliance_127_0_0_1_download_speed"
LAST = "sensor.appliance_127_0_0_1_last_finished"
DOWNLOADING = "binary_sensor.appliance_127_0_0_1_downloading"
PAUSED = "switch.appliance_127_0_0_1_queue_paused"
RELEASE = "update.appliance_127_0_0_1_appliance_release"
YTDLP = "update.appliance_127_0_0_1_yt_dlp"


def state(hass: HomeAssistant, entity_id: str) -> str:
    current = hass.states.get(entity_id)
    assert current is not None, f"{entity_id} does not exist"
    return current.state


async def add_url(hass: HomeAssistant, entry: MockConfigEntry, url: str | list[str],
                  **fields: Any) -> list[dict[str, Any]]:
    response = await hass.services.async_call(
        DOMAIN, "add_url", {"config_entry_id": entry.entry_id, "url": url, **fields},
        blocking=True, return_response=True)
    assert isinstance(response, dict)
    return list(response["items"])


async def test_device_and_entities(hass: HomeAssistant, loaded_entry: MockConfigEntry,
                                   appliance: Server) -> None:
    device = dr.async_get(hass).async_get_device({(DOMAIN, instance_id(appliance))})
    assert device is not None
    assert device.sw_version == appliance.get("/api/health").json()["version"]
    assert (device.manufacturer, device.model) == ("appliance", "Media downloader")
    entities = er.async_entries_for_config_entry(er.async_get(hass), loaded_entry.entry_id)
    assert {e.translation_key for e in entities} == {
        "active", "queued", "failed", "speed", "disk_free", "last_finished", "downloading",
        "download_folder_problem", "queue_paused", "release", "ytdlp"}
    assert all(e.device_id == device.id for e in entities)
    disk = next(e for e in entities if e.translation_key == "disk_free")
    assert disk.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert state(hass, ACTIVE) == "0"
    assert state(hass, DOWNLOADING) == STATE_OFF
    assert state(hass, PAUSED) == STATE_OFF
    # The service's release check (YTP_CHECK_FOR_UPDATES) found a newer release.
    release = hass.states.get(RELEASE)
    assert release is not None and release.state == STATE_ON
    assert release.attributes["latest_version"] == NEWER_RELEASE
    assert release.attributes["installed_version"] == device.sw_version


async def test_a_missing_download_folder_is_a_problem_while_it_lasts(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, appliance: Server) -> None:
    """The service holds downloads back while the download folder's disk is gone (its periodic
    check, every 5 s, logs the change once each way); the sensor follows."""
    [problem] = [e.entity_id for e in er.async_entries_for_config_entry(
        er.async_get(hass), loaded_entry.entry_id)
        if e.translation_key == "download_folder_problem"]
    assert state(hass, problem) == STATE_OFF
    folder = appliance.download_path
    aside = folder.with_name(folder.name + "-unplugged")
    await in_executor(hass, folder.rename, aside)
    try:
        await until(lambda: state(hass, problem) == STATE_ON, message="the problem on")
        said = hass.states.get(problem)
        assert said is not None and said.attributes["problem"] == (
            f"The download folder {folder} is missing (is its disk mounted?): downloads wait "
            "until it is back.")
        health = await in_executor(hass, appliance.get, "/api/health")  # was a 500
        assert health.status_code == 200 and health.json()["download_path_free_bytes"] is None
        assert health.json()["download_folder"] == said.attributes["problem"]
        listing = await in_executor(hass, appliance.get, "/api/file/browser/")
        assert listing.status_code == 503  # not 404 'path / does not exist'
        assert listing.json()["error"] == said.attributes["problem"]
    finally:
        await in_executor(hass, aside.rename, folder)
    await until(lambda: state(hass, problem) == STATE_OFF, message="the problem off")


async def test_setup_while_the_service_is_down_is_retried(hass: HomeAssistant,
                                                          appliance: Server) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id=instance_id(appliance),
                            data=entry_data(appliance, port=free_port_pair()))
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    await hass.config_entries.async_remove(entry.entry_id)


async def test_actions_name_a_loaded_appliance(hass: HomeAssistant,
                                               loaded_entry: MockConfigEntry,
                                               appliance: Server) -> None:
    with pytest.raises(ServiceValidationError, match="No appliance entry") as unknown:
        await add_url(hass, MockConfigEntry(domain=DOMAIN, entry_id="nope"), "http://x/")
    assert unknown.value.translation_placeholders == {"entry": "nope"}
    other = MockConfigEntry(domain=DOMAIN, unique_id="other", data=entry_data(appliance))
    other.add_to_hass(hass)
    with pytest.raises(ServiceValidationError, match="not loaded"):
        await add_url(hass, other, "http://x/")


async def test_ytdlp_update_entity_installs_through_the_service(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, appliance: Server) -> None:
    """The service's yt-dlp as an update entity. The test service's package index is a
    closed port (no test may change the environment the service runs from), so the newest
    release is unknown: Home Assistant offers no install, and the entity's install, run
    anyway, ends in the service's own refusal, shown as an error."""
    served = (await in_executor(hass, appliance.get, "/api/system/ytdlp")).json()
    entity = hass.states.get(YTDLP)
    assert entity is not None
    assert entity.attributes["installed_version"] == served["installed"]
    assert served["latest"] == "unknown" and entity.attributes["latest_version"] is None
    with pytest.raises(HomeAssistantError, match="No update available"):
        await hass.services.async_call("update", "install", {"entity_id": YTDLP},
                                       blocking=True)
    update = hass.data["entity_components"]["update"].get_entity(YTDLP)
    with pytest.raises(HomeAssistantError, match="cannot be reached"):
        await update.async_install(None, False)
    after = (await in_executor(hass, appliance.get, "/api/system/ytdlp")).json()
    assert after["update"]["state"] == "failed"
    assert after["installed"] == served["installed"]
    assert hass.states.get(YTDLP).attributes["in_progress"] is False


async def test_a_real_download_moves_the_entities_and_fires_events(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, media: dict[str, str]) -> None:
    queued = async_capture_events(hass, EVENT_QUEUED)
    finished = async_capture_events(hass, EVENT_FINISHED)
    seen: dict[str, set[str]] = {DOWNLOADING: set(), ACTIVE: set(), SPEED: set()}

    def watch() -> bool:
        for entity_id, values in seen.items():
            values.add(state(hass, entity_id))
        return bool(finished)

    items = await add_url(hass, loaded_entry, media["slow"], preset="default")
    assert len(items) == 1 and items[0]["status"] == "queued"
    await until(watch, within=90, message="the finished event")
    assert STATE_ON in seen[DOWNLOADING] and "1" in seen[ACTIVE]
    assert any(float(v) > 0 for v in seen[SPEED] if v not in ("unknown", STATE_UNAVAILABLE))
    assert [e.data["id"] for e in queued] == [items[0]["id"]]
    event = finished[0].data
    assert event["id"] == items[0]["id"]
    assert event["url"] == media["slow"] and event["preset"] == "default"
    assert event["filename"] and event["title"]
    assert event["instance_id"] == loaded_entry.unique_id
    await until(lambda: state(hass, DOWNLOADING) == STATE_OFF, message="downloading off")
    assert state(hass, ACTIVE) == "0"
    assert state(hass, LAST) == event["title"]
    assert hass.states.get(LAST).attributes["filename"] == event["filename"]


async def test_pause_switch_holds_the_real_queue(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, appliance: Server,
        media: dict[str, str]) -> None:
    await hass.services.async_call("switch", "turn_on", {"entity_id": PAUSED}, blocking=True)
    assert state(hass, PAUSED) == STATE_ON
    config = await in_executor(hass, appliance.get, "/api/system/configuration")
    assert config.json()["paused"] is True
    try:
        finished = async_capture_events(hass, EVENT_FINISHED)
        items = await add_url(hass, loaded_entry, media["short"])
        await until(lambda: state(hass, QUEUED) == "1", message="one queued download")
        item = await in_executor(hass, appliance.item, items[0]["id"])
        assert item["status"] == "pending"
        assert not finished
    finally:
        await hass.services.async_call("switch", "turn_off", {"entity_id": PAUSED},
                                       blocking=True)
    config = await in_executor(hass, appliance.get, "/api/system/configuration")
    assert config.json()["paused"] is False
    await until(lambda: finished, within=60, message="the held download to finish")
    # (shown with its event, or up to a second later when it finished within a second of
    # being added: two downloads' events in a second are a burst)
    await until(lambda: state(hass, QUEUED) == "0", message="the queue shown empty")


async def test_pause_from_elsewhere_reaches_the_switch(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, appliance: Server) -> None:
    """The switch follows the service's own events, not only its own commands."""
    await in_executor(hass, appliance.post, "/api/system/pause")
    await until(lambda: state(hass, PAUSED) == STATE_ON, message="the switch on")
    await in_executor(hass, appliance.post, "/api/system/resume")
    await until(lambda: state(hass, PAUSED) == STATE_OFF, message="the switch off")


async def test_cancel_of_an_unknown_download_says_which(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, appliance: Server,
        media: dict[str, str]) -> None:
    """Of a known download (waiting, never started) and an id the service has no download
    of (in its own form, a UUID): the one is cancelled, the other named."""
    [item] = await add_url(hass, loaded_entry, media["clip"], folder="unknown-cancel",
                           auto_start=False)
    assert (await in_executor(hass, appliance.item, item["id"]))["auto_start"] is False
    unknown = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(DOMAIN, "cancel", {
            "config_entry_id": loaded_entry.entry_id, "item_id": [item["id"], unknown]},
            blocking=True)
    assert raised.value.translation_key == "not_cancelled"
    assert raised.value.translation_placeholders == {"ids": unknown}


async def test_cancel_retry_and_the_failed_event(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, appliance: Server,
        media: dict[str, str]) -> None:
    failed = async_capture_events(hass, EVENT_FAILED)
    # Its own folder: the same file finished by another test would be "already downloaded".
    [item] = await add_url(hass, loaded_entry, media["crawl"], folder="cancel")
    await until(lambda: state(hass, ACTIVE) == "1", message="the download to start")
    await hass.services.async_call(DOMAIN, "cancel", {
        "config_entry_id": loaded_entry.entry_id, "item_id": item["id"]}, blocking=True)
    cancelled = await in_executor(hass, appliance.wait_status, item["id"], {"cancelled"})
    assert cancelled["status"] == "cancelled"
    await until(lambda: state(hass, ACTIVE) == "0", message="no download running")

    with pytest.raises(ServiceValidationError):  # gone from the queue: nothing to cancel
        await hass.services.async_call(DOMAIN, "cancel", {
            "config_entry_id": loaded_entry.entry_id, "item_id": item["id"]}, blocking=True)

    response = await hass.services.async_call(
        DOMAIN, "retry", {"config_entry_id": loaded_entry.entry_id, "item_id": item["id"]},
        blocking=True, return_response=True)
    assert isinstance(response, dict)
    [again] = response["items"]
    assert again["retry_of"] == item["id"] and again["id"] != item["id"]
    assert (await in_executor(hass, appliance.get, f"/api/history/{item['id']}")
            ).status_code == 404
    await hass.services.async_call(DOMAIN, "cancel", {
        "config_entry_id": loaded_entry.entry_id, "item_id": [again["id"]]}, blocking=True)
    await in_executor(hass, appliance.wait_status, again["id"], {"cancelled"})

    [bad] = await add_url(hass, loaded_entry, media["fail"])
    await until(lambda: failed, within=60, message="the failed event")
    assert failed[0].data["id"] == bad["id"] and failed[0].data["error"]
    await until(lambda: state(hass, FAILED) not in ("0", "unknown"),
                message="the failed counter")
    [done] = await add_url(hass, loaded_entry, media["short"], folder="done")
    await in_executor(hass, appliance.wait_status, done["id"], {"finished"})
    with pytest.raises(ServiceValidationError, match="only failed or cancelled"):
        await hass.services.async_call(DOMAIN, "retry", {
            "config_entry_id": loaded_entry.entry_id, "item_id": done["id"]},
            blocking=True, return_response=True)


async def test_the_events_keep_no_secret_of_a_link(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, appliance: Server,
        media: dict[str, str]) -> None:
    """The recorder keeps every bus event (and Home Assistant's backups the recorder): a
    link's password and passkey, in its url, its title before the site names it and
    yt-dlp's error quoting it, stay out. A retry of the event's id queues it whole."""
    queued = async_capture_events(hass, EVENT_QUEUED)
    failed = async_capture_events(hass, EVENT_FAILED)
    scheme, rest = media["fail"].split("://")
    url = f"{scheme}://me:hunter2@{rest}?passkey=s3cr3tkey&list=PL1"
    [item] = await add_url(hass, loaded_entry, url, folder="secrets")
    await until(lambda: [e for e in failed if e.data["id"] == item["id"]], within=60,
                message="the failed event")
    [added] = [e.data for e in queued if e.data["id"] == item["id"]]
    [fail] = [e.data for e in failed if e.data["id"] == item["id"]]
    shown = f"{scheme}://{rest}?passkey=***&list=PL1"
    assert added["url"] == fail["url"] == shown, (added, fail)
    assert fail["error"], fail
    for data in (added, fail):
        assert "hunter2" not in repr(data) and "s3cr3tkey" not in repr(data), data
    record = (await in_executor(hass, appliance.get, f"/api/history/{item['id']}")).json()
    assert "hunter2" in record["url"], "the service itself keeps the link whole"
    response = await hass.services.async_call(
        DOMAIN, "retry", {"config_entry_id": loaded_entry.entry_id, "item_id": item["id"]},
        blocking=True, return_response=True)
    assert isinstance(response, dict)
    [again] = response["items"]
    assert (await in_executor(hass, appliance.get, f"/api/history/{again['id']}")
            ).json()["url"] == url


async def test_add_url_refused_by_the_service(hass: HomeAssistant,
                                              loaded_entry: MockConfigEntry) -> None:
    with pytest.raises(ServiceValidationError, match="refused"):
        await add_url(hass, loaded_entry, "file:///etc/passwd")


async def test_device_trigger_fires_an_automation(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, appliance: Server,
        media: dict[str, str]) -> None:
    device = dr.async_get(hass).async_get_device({(DOMAIN, loaded_entry.unique_id)})
    assert device is not None
    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER,
                                                  device.id)
    assert {(t["platform"], t["type"]) for t in triggers if t["domain"] == DOMAIN} == {
        ("device", "download_finished"), ("device", "download_failed"),
        ("device", "download_queued")}
    fired = async_capture_events(hass, "test_download_done")
    assert await async_setup_component(hass, automation.DOMAIN, {automation.DOMAIN: [{
        "trigger": {"platform": "device", "domain": DOMAIN, "device_id": device.id,
                    "type": "download_finished"},
        "action": {"event": "test_download_done",
                   "event_data": {"title": "{{ trigger.event.data.title }}"}},
    }]})
    await add_url(hass, loaded_entry, media["clip"], folder="trigger")
    await until(lambda: fired, within=60, message="the automation")
    assert fired[0].data["title"]


async def test_diagnostics_are_redacted(hass: HomeAssistant, loaded_entry: MockConfigEntry,
                                        hass_client: ClientSessionGenerator,
                                        appliance: Server) -> None:
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    assert diagnostics["entry"]["data"][CONF_TOKEN] == "**REDACTED**"
    assert diagnostics["entry"]["unique_id"] == instance_id(appliance)
    assert diagnostics["connected"] is True
    assert diagnostics["configuration"]["app"]["instance_id"] == instance_id(appliance)
    assert appliance.token not in str(diagnostics)  # type: ignore[attr-defined]
    assert diagnostics["configuration"]["app"]["ytdlp_cli"] == "**REDACTED**"
    assert CLI_SECRET not in str(diagnostics)


async def test_unload_and_reload(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.NOT_LOADED
    assert state(hass, ACTIVE) == STATE_UNAVAILABLE
    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert state(hass, ACTIVE) == "0"


async def test_restart_unavailable_then_back(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, appliance: Server,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="custom_components.appliance")
    await in_executor(hass, appliance.stop)
    await until(lambda: state(hass, ACTIVE) == STATE_UNAVAILABLE, message="unavailable")
    assert state(hass, PAUSED) == STATE_UNAVAILABLE
    await in_executor(hass, appliance.start)
    await until(lambda: state(hass, ACTIVE) == "0", within=60, message="available again")
    assert state(hass, PAUSED) == STATE_OFF
    went = [r for r in caplog.records if r.levelno >= logging.ERROR and "Error" in r.message]
    back = [r for r in caplog.records if "recovered" in r.message]
    assert len(went) == 1 and len(back) == 1, [r.message for r in caplog.records]


async def test_setup_with_refused_credentials_asks_for_reauth(hass: HomeAssistant,
                                                              appliance: Server) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id=instance_id(appliance),
                            data=entry_data(appliance, token="not-the-token"))
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    [flow] = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == "reauth"


async def test_reauth_after_gentoken(hass: HomeAssistant, loaded_entry: MockConfigEntry,
                                     appliance: Server) -> None:
    """A new token while Home Assistant is connected: the next request is refused, Home
    Assistant asks for the new token, and the entry comes back with it."""
    new_token = await in_executor(hass, appliance_cli, appliance, "web", "gentoken")
    appliance.session.headers["Authorization"] = f"Token {new_token}"
    old_token = appliance.token  # type: ignore[attr-defined]
    appliance.token = new_token  # type: ignore[attr-defined]
    assert new_token != old_token

    with pytest.raises(HomeAssistantError, match="reauthenticate"):
        await hass.services.async_call("switch", "turn_on", {"entity_id": PAUSED},
                                       blocking=True)
    await hass.async_block_till_done()
    [flow] = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == "reauth"
    result = await hass.config_entries.flow.async_configure(flow["flow_id"],
                                                            {CONF_TOKEN: new_token})
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert loaded_entry.data[CONF_TOKEN] == new_token
    assert state(hass, ACTIVE) == "0"
    await hass.services.async_call("switch", "turn_on", {"entity_id": PAUSED}, blocking=True)
    assert (await in_executor(hass, appliance.get, "/api/system/configuration")
            ).json()["paused"] is True
    await hass.services.async_call("switch", "turn_off", {"entity_id": PAUSED}, blocking=True)


@pytest.mark.parametrize("fields", [
    {"url": "file:///etc/passwd"}, {"url": "http://127.0.0.1:1/x", "folder": "../outside"},
    {"url": "http://127.0.0.1:1/x", "folder": "/etc"},
    {"url": "http://127.0.0.1:1/x", "preset": "../../x"}])
async def test_add_url_refuses_what_the_appliance_refuses(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, fields: dict[str, str]) -> None:
    """Hostile fields reach the real service, whose refusal is the action's error (not a
    queued item that fails later, not an unexpected error)."""
    with pytest.raises(ServiceValidationError, match=r"The appliance refused: .+"):
        await add_url(hass, loaded_entry, **fields)


async def test_retry_keeps_the_cookies_no_client_sees(
        hass: HomeAssistant, loaded_entry: MockConfigEntry, appliance: Server,
        media: dict[str, str]) -> None:
    """A download added with cookies (a private video), then cancelled: the retry queues it
    with its cookies (the service shows a client only ``has_cookies``), folder and all."""
    cookies = "# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tFALSE\t0\tsid\tsecret\n"
    added = await in_executor(hass, appliance.post, "/api/history", {
        "url": media["crawl"], "cookies": cookies, "folder": "private", "auto_start": False})
    assert added.status_code == 200, added.text
    item_id = added.json()[0]["id"]
    await in_executor(hass, appliance.post, "/api/history/cancel", {"ids": [item_id]})
    await in_executor(hass, appliance.wait_status, item_id, {"cancelled"})

    response = await hass.services.async_call(
        DOMAIN, "retry", {"config_entry_id": loaded_entry.entry_id, "item_id": item_id},
        blocking=True, return_response=True)
    assert isinstance(response, dict)
    [again] = response["items"]
    assert again["retry_of"] == item_id and again["url"] == media["crawl"]
    new = await in_executor(hass, appliance.item, again["id"])
    assert new["has_cookies"] is True and new["folder"] == "private"
    await hass.services.async_call(DOMAIN, "cancel", {
        "config_entry_id": loaded_entry.entry_id, "item_id": again["id"]}, blocking=True)
    await in_executor(hass, appliance.wait_status, again["id"], {"cancelled"})


async def test_a_queue_larger_than_an_answer_may_be_is_still_counted(
        hass: HomeAssistant, appliance: Server, media: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The queue's items are asked for with only the fields the entities show: a queue of
    tens of thousands of whole items passes the answer's bound, and setup failed with it."""
    added = await in_executor(hass, appliance.post, "/api/history",
                              [{"url": media["crawl"], "auto_start": False}] * 3)
    ids = [item["id"] for item in added.json()]
    try:
        whole = await in_executor(hass, appliance.get, "/api/system/configuration")
        assert len(whole.json()["queue"]) == 3
        monkeypatch.setattr(api, "MAX_ANSWER", len(whole.content) - 1)
        entry = await load_entry(hass, appliance)
        assert state(hass, QUEUED) == "3"
        await unload_entry(hass, entry)
    finally:
        await in_executor(hass, appliance.post, "/api/history/cancel", {"ids": ids})
        for item_id in ids:
            await in_executor(hass, appliance.wait_status, item_id, {"cancelled"})
