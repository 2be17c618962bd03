"""A broken or hostile appliance, and hostile input in the forms and actions.

The real service never answers junk, so here a small HTTP and websocket server on 127.0.0.1
plays the appliance (``FakeAppliance``): what it answers is what each test sets. Where the
real service can give the answer (a 421 for a host name it does not answer to) it does: the
fake one forwards to it, as a reverse proxy under a public name would.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from ipaddress import ip_address
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.appliance import api, coordinator
from custom_components.appliance.const import DOMAIN
from support.server import Server, free_port_pair

from .conftest import allow_loopback, entry_data, instance_id, load_entry, until
from .fake_appliance import INSTANCE, FakeAppliance, loaded, user_form

# --- the config flow ------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["http://127.0.0.1", "127.0.0.1/api", "me@127.0.0.1",
                                  "127.0.0.1:8081", "127.0.0.1?x", "::1]", " "])
async def test_a_host_that_is_not_a_host_name(hass: HomeAssistant, host: str) -> None:
    """What would make another URL than the appliance's is refused before any request."""
    result = await user_form(hass, {CONF_HOST: host, CONF_PORT: 8081})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_HOST: "invalid_host"}


@pytest.mark.parametrize("port", [0, 65536, "http"])
async def test_a_port_that_is_no_port(hass: HomeAssistant, port: Any) -> None:
    with pytest.raises(InvalidData):
        await user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: port})


@pytest.mark.parametrize("port", [1, 65535])
async def test_the_ports_at_the_edges_are_ports(hass: HomeAssistant, port: int) -> None:
    """Tried (nothing answers there), not refused as no port."""
    result = await user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: port})
    assert result["errors"] == {"base": "cannot_connect"}


@pytest.mark.parametrize("health", [
    # (answers made per request: a response object is sent once, and a second run of the
    # tests in the same process, mutmut's, would get a dropped connection instead)
    lambda _: web.Response(text="<html>a router's page</html>", content_type="text/html"),
    lambda _: web.Response(text="[" * 100_000, content_type="application/json"),
    ["a", "list"],
    {"status": "ok"},  # no instance id
    {"instance_id": "../../x"},
])
async def test_not_an_appliance_says_so(hass: HomeAssistant, fake: FakeAppliance,
                                        health: Any) -> None:
    fake.answers["/api/health"] = health
    result = await user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
    assert result["errors"] == {"base": "not_appliance"}
    assert "/api/health" in result["description_placeholders"]["error"]


async def test_a_redirect_is_not_followed(hass: HomeAssistant, fake: FakeAppliance) -> None:
    fake.answers["/api/health"] = web.Response(
        status=302, headers={"Location": "http://127.0.0.1:1/elsewhere"})
    result = await user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
    assert result["errors"] == {"base": "not_appliance"}
    assert result["description_placeholders"]["error"] == (
        "/api/health: HTTP 302 to http://127.0.0.1:1/elsewhere")


async def test_a_huge_answer_is_not_read_whole(hass: HomeAssistant, fake: FakeAppliance,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "MAX_ANSWER", 10_000)

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # no Content-Length: only the reading can tell
        await response.prepare(request)
        await response.write(json.dumps({"instance_id": INSTANCE, "pad": "x" * 50_000})
                             .encode())
        return response

    fake.answers["/api/health"] = chunked
    result = await user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
    assert result["errors"] == {"base": "not_appliance"}
    assert "more than 10000 bytes" in result["description_placeholders"]["error"]


@pytest.mark.parametrize("nested", [False, True])
async def test_a_large_answer_is_read_off_the_event_loop(
        hass: HomeAssistant, fake: FakeAppliance, monkeypatch: pytest.MonkeyPatch,
        nested: bool) -> None:
    """Megabytes of JSON took Home Assistant's loop for a second on a small box; an answer
    nested past the stack is refused there as on the loop."""
    on_loop: list[bool] = []

    def loads(body: bytes) -> Any:
        on_loop.append(threading.current_thread() is threading.main_thread())
        return json.loads(body)

    monkeypatch.setattr(api, "json", SimpleNamespace(loads=loads))
    body = "[" * (api.MAX_ON_LOOP + 1) if nested else json.dumps(
        {"instance_id": INSTANCE, "version": "1", "pad": "x" * api.MAX_ON_LOOP})
    fake.answers["/api/health"] = lambda _: web.Response(text=body,
                                                         content_type="application/json")
    result = await user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
    assert on_loop[0] is False
    if nested:
        assert result["errors"] == {"base": "not_appliance"}
        assert "not JSON (RecursionError)" in result["description_placeholders"]["error"]
    else:
        assert "not_appliance" not in str(result.get("errors"))


async def test_too_many_attempts_is_not_failed_to_connect(hass: HomeAssistant,
                                                          fake: FakeAppliance) -> None:
    """The service's 429 (login throttling) is its refusal, with its reason."""
    fake.answers["/api/system/configuration"] = web.json_response(
        {"error": "Too many failed attempts; try again later.", "code": "TOO_MANY_REQUESTS"},
        status=429, headers={"Retry-After": "1"})
    result = await user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
    assert result["errors"] == {"base": "refused"}
    assert result["description_placeholders"]["error"] == (
        "Too many failed attempts; try again later.")


@pytest.fixture(scope="module")
def open_appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real service with authentication off: it checks the Host header's name."""
    allow_loopback()
    server = Server(tmp_path_factory.mktemp("open"),
                    {"YTP_FILE_LOGGING": "false", "YTP_ZEROCONF": "false"}).start()
    yield server
    server.stop()


async def test_a_host_name_the_appliance_does_not_answer_to(
        hass: HomeAssistant, fake: FakeAppliance, open_appliance: Server) -> None:
    """Home Assistant reaches the appliance through a proxy under a public name: the real
    service answers 421, and the form says what the service says to do about it."""
    async def proxy(request: web.Request) -> web.Response:
        async with aiohttp.ClientSession() as session, session.get(
                open_appliance.url + request.path_qs,
                headers={"Host": f"downloads.example.com:{fake.port}"}) as answer:
            return web.Response(status=answer.status, body=await answer.read(),
                                content_type=answer.content_type)

    fake.answers["/api/health"] = proxy
    result = await user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
    assert result["errors"] == {"base": "refused"}
    error = result["description_placeholders"]["error"]
    assert "'downloads.example.com'" in error and "YTP_ALLOWED_HOSTS" in error


def _announcement(instance: str, port: int) -> ZeroconfServiceInfo:
    return ZeroconfServiceInfo(
        ip_address=ip_address("127.0.0.1"), ip_addresses=[ip_address("127.0.0.1")],
        hostname="evil.local.", name="appliance evil._appliance._tcp.local.", port=port,
        type="_appliance._tcp.local.", properties={"id": instance, "version": "1"})


async def _stranger_announces(hass: HomeAssistant, fake: FakeAppliance,
                              appliance: Server) -> Any:
    """The flow's first answer to the fake announcing (and answering as) the appliance's id
    at its own address."""
    fake.answers["/api/health"] = {"instance_id": instance_id(appliance)}
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF},
        data=_announcement(instance_id(appliance), fake.port))
    await hass.async_block_till_done()
    return result


async def test_a_stranger_announcing_a_known_id_gets_no_credentials(
        hass: HomeAssistant, fake: FakeAppliance, appliance: Server) -> None:
    """Anyone on the network may announce the id of the person's appliance (every
    announcement and /api/health show it) at their own address: the entry stays where its
    appliance answers, and its token goes nowhere else."""
    entry = await load_entry(hass, appliance)
    result = await _stranger_announces(hass, fake, appliance)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == entry_data(appliance)
    assert entry.state is ConfigEntryState.LOADED
    assert fake.authorizations == []


async def test_a_stranger_announcing_a_known_id_while_it_is_down_is_asked_about(
        hass: HomeAssistant, fake: FakeAppliance, appliance: Server) -> None:
    """While the appliance is away (a restart, a power cut), a stranger's announcement of its
    id does not move the entry by itself: the person is asked, and nothing is sent."""
    gone = free_port_pair()
    entry = MockConfigEntry(domain=DOMAIN, title="Mine", unique_id=instance_id(appliance),
                            data=entry_data(appliance, port=gone))
    entry.add_to_hass(hass)
    result = await _stranger_announces(hass, fake, appliance)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_move"
    assert entry.data == entry_data(appliance, port=gone)
    assert fake.authorizations == [] and fake.paths == []


async def test_a_move_to_another_appliance_is_refused(hass: HomeAssistant,
                                                      fake: FakeAppliance) -> None:
    """Confirmed, the move is still proven: the new address must answer as the entry's
    appliance."""
    gone = free_port_pair()
    entry = MockConfigEntry(domain=DOMAIN, title="Mine", unique_id=INSTANCE,
                            data={CONF_HOST: "127.0.0.1", CONF_PORT: gone})
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF},
        data=_announcement(INSTANCE, fake.port))
    fake.answers["/api/health"] = {"instance_id": "cd" * 16}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_appliance"
    assert entry.data == {CONF_HOST: "127.0.0.1", CONF_PORT: gone}


# --- a broken appliance once set up ---------------------------------------------------------

async def test_fields_of_the_wrong_type_count_as_absent(hass: HomeAssistant,
                                                        fake: FakeAppliance) -> None:
    fake.answers["/api/system/configuration"] = lambda _: {
        "app": "1.0", "paused": "no",
        "presets": ["video", {"name": 3}, {"name": "audio"}, {"name": "p" * 1_000_000},
                    *({"name": f"preset {n}"} for n in range(5000))],
        "queue": [1, {"no": "id"}, {"id": "a", "status": "downloading", "speed": "fast"},
                  {"id": "b", "status": "downloading", "speed": 1000},
                  {"id": "c", "status": "downloading", "speed": float("nan")},
                  {"id": "d", "status": "downloading", "speed": float("-inf")}],
        "websocket": {"port": fake.port, "path": "/ws"}}
    fake.answers["/api/engine/stats"] = {"failed": "many"}
    fake.answers["/api/health"] = {"instance_id": INSTANCE, "download_path_free_bytes": "lots"}
    fake.answers["/api/tasks"] = {"items": [{"id": True}, {"id": "3"}, "x",
                                            {"id": 4, "name": ["a", "list"],
                                             "enabled": "false"}]}
    fake.answers["/api/history"] = {"items": ["not an item"]}
    entry = await loaded(hass, fake)
    assert entry.state is ConfigEntryState.LOADED
    data = entry.runtime_data.data
    # (presets: a name no form shows is none, and a list of thousands is cut)
    assert (data.version, data.paused) == ("", False)
    assert data.presets == ["audio", *(f"preset {n}" for n in range(999))]
    assert (data.active, data.speed, data.failed, data.disk_free) == (4, 1000.0, 0, None)
    assert list(data.tasks) == [4]
    assert data.last_finished is None
    assert hass.states.get("switch.fake_queue_paused").state == "off"
    assert hass.states.get("switch.a_list_enabled").state == "off"  # "false" is no true


async def test_the_services_reason_for_a_server_error_is_shown(hass: HomeAssistant,
                                                               fake: FakeAppliance) -> None:
    fake.answers["/api/engine/stats"] = lambda _: web.json_response(
        {"error": "database is locked", "code": "UNAVAILABLE"}, status=503)
    entry = await loaded(hass, fake)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.error_reason_translation_key == "cannot_connect"
    assert entry.error_reason_translation_placeholders["error"] == (
        "HTTP 503: database is locked")


async def test_a_failed_request_of_a_snapshot_drops_its_siblings(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    """The snapshot's requests run at once: when one fails, the answer is lost, and the
    others were left to run on, each holding a connection up to its own bound (30 s; at each
    retry of the setup, and each reconnect). They are cancelled with it now, and the failure
    is the entry's reason as itself."""
    tasks_asked, tasks_dropped = asyncio.Event(), asyncio.Event()

    async def held_tasks(request: web.Request) -> web.Response:
        tasks_asked.set()
        await until(lambda: request.transport is None or request.transport.is_closing(),
                    within=60, message="the client to go")
        tasks_dropped.set()
        return web.json_response({"items": [], "pagination": {"has_next": False}})

    async def failing_stats(_: web.Request) -> web.Response:
        await tasks_asked.wait()
        return web.json_response({"error": "database is locked", "code": "UNAVAILABLE"},
                                 status=503)

    fake.answers["/api/tasks"] = held_tasks
    fake.answers["/api/engine/stats"] = failing_stats
    entry = await loaded(hass, fake)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.error_reason_translation_placeholders["error"] == (
        "HTTP 503: database is locked")
    await until(tasks_dropped.is_set, within=10, message="the tasks' request to be dropped")


async def test_a_paused_switch_shows_what_it_was_told_at_once(hass: HomeAssistant,
                                                             fake: FakeAppliance) -> None:
    """The service announces a pause on its event stream too; the switch does not wait for
    it (this one never announces anything)."""
    fake.answers["/api/system/pause"] = {"paused": True}
    fake.answers["/api/system/resume"] = {"paused": False}
    await loaded(hass, fake)
    switch = "switch.fake_queue_paused"
    for service, state in (("turn_on", "on"), ("turn_off", "off")):
        await hass.services.async_call("switch", service, {"entity_id": switch},
                                       blocking=True)
        assert hass.states.get(switch).state == state
    assert fake.paths[-2:] == ["/api/system/pause", "/api/system/resume"]


async def test_a_service_older_than_its_tasks_api_has_no_subscriptions(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    del fake.answers["/api/tasks"]  # 404
    fake.answers["/api/system/pause"] = lambda _: web.json_response(
        {"error": "Already paused.", "code": "NOT_ACCEPTABLE"}, status=406)
    entry = await loaded(hass, fake)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.data.tasks == {}
    # 406: already in the state asked for, which is no failure.
    await hass.services.async_call("switch", "turn_on",
                                   {"entity_id": "switch.fake_queue_paused"}, blocking=True)
    assert hass.states.get("switch.fake_queue_paused").state == "on"


async def test_an_empty_or_odd_folder_problem_is_none(hass: HomeAssistant,
                                                      fake: FakeAppliance) -> None:
    fake.answers["/api/engine/stats"] = {"failed": 0, "download_folder_problem": ""}
    await loaded(hass, fake)
    problem = "binary_sensor.fake_download_folder_s_disk"
    assert hass.states.get(problem).state == "off"
    for value in ("Not mounted", 7, ""):
        fake.frames.put_nowait(json.dumps({"event": "download_folder",
                                           "data": {"problem": value}}))
        expected = "on" if value == "Not mounted" else "off"
        await until(lambda expected=expected: hass.states.get(problem).state == expected,
                    message=f"the problem {value!r}")


async def test_a_failed_action_says_why_in_the_integrations_words(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    entry = await loaded(hass, fake)
    for answer, key, said in (
            (lambda _: web.json_response({"error": "busy"}, status=503), "cannot_connect",
             "Cannot reach the appliance: HTTP 503: busy"),
            ({"not": "a list"}, "bad_answer", "The appliance answered something it should "
             "not: /api/history: expected a JSON list, got dict")):
        fake.answers["/api/history"] = lambda request, answer=answer: (
            answer(request) if callable(answer) and request.method == "POST"
            else answer if request.method == "POST" else {"items": []})
        with pytest.raises(HomeAssistantError) as failed:
            await hass.services.async_call(
                DOMAIN, "add_url", {"config_entry_id": entry.entry_id, "url": "http://x/"},
                blocking=True, return_response=True)
        assert (failed.value.translation_domain, failed.value.translation_key) == (
            DOMAIN, key)
        assert str(failed.value) == said


async def test_tasks_that_never_end_are_an_error_not_a_hang(hass: HomeAssistant,
                                                            fake: FakeAppliance) -> None:
    fake.answers["/api/tasks"] = {"items": [{"id": 1}], "pagination": {"has_next": True}}
    entry = await loaded(hass, fake)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    # The reason is shown on the entry (Home Assistant's own first refresh gives none).
    assert entry.error_reason_translation_key == "bad_answer"
    assert "more than 100 pages" in entry.error_reason_translation_placeholders["error"]


async def test_a_snapshot_that_trickles_is_given_up_as_a_whole(
        hass: HomeAssistant, fake: FakeAppliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each request is bounded (30 s), and the tasks are read up to 100 pages: a service that
    answers every page just within the bound held the entry's setup (and each reconnect's
    snapshot) for 50 minutes. The snapshot as a whole is bounded (scaled down here)."""
    monkeypatch.setattr(coordinator, "SNAPSHOT_TIMEOUT", 2.0)

    async def slow_page(request: web.Request) -> web.Response:
        await asyncio.sleep(0.2)
        return web.json_response({"items": [{"id": int(request.query["page"])}],
                                  "pagination": {"has_next": True}})

    fake.answers["/api/tasks"] = slow_page
    entry = await loaded(hass, fake)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.error_reason_translation_key == "cannot_connect"
    assert entry.error_reason_translation_placeholders == {
        "error": "no whole answer within 2 s"}
    pages = [path for path in fake.paths if path.startswith("/api/tasks")]
    assert 1 <= len(pages) < 100


@pytest.mark.parametrize("websocket", [{"port": "8082"}, {"port": 70000}, {"path": "ws"}])
async def test_a_websocket_that_is_nowhere(hass: HomeAssistant, fake: FakeAppliance,
                                           websocket: dict[str, Any]) -> None:
    fake.answers["/api/system/configuration"] = {"websocket": websocket}
    entry = await loaded(hass, fake)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.error_reason_translation_key == "bad_answer"
    assert "no websocket" in entry.error_reason_translation_placeholders["error"]


async def test_a_websocket_that_never_answers_is_given_up(
        hass: HomeAssistant, fake: FakeAppliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """The websocket's port takes the connection and never answers the handshake: the setup
    fails (and is retried) after WS_CONNECT_TIMEOUT, not after aiohttp's five minutes."""
    monkeypatch.setattr(api, "WS_CONNECT_TIMEOUT", 0.5)
    fake.ws_held = asyncio.Event()
    try:
        entry = await loaded(hass, fake)
    finally:
        fake.ws_held.set()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.error_reason_translation_key == "cannot_connect"
    assert "websocket" in entry.error_reason_translation_placeholders["error"]


async def test_junk_on_the_event_stream_does_not_end_it(hass: HomeAssistant,
                                                        fake: FakeAppliance) -> None:
    entry = await loaded(hass, fake)
    last = "sensor.fake_last_finished"
    long_title = "A Reddit post's title, " + "very " * 100 + "long"
    for frame in ("not json", "[" * 100_000, json.dumps(["event"]),
                  json.dumps({"event": "item_completed", "data": "x"}),
                  json.dumps({"event": "config_update", "data": {
                      "feature": "tasks", "data": {"id": "7"}}}),
                  json.dumps({"event": "item_completed", "data": {
                      "id": "a", "status": "finished", "title": long_title,
                      "url": "http://127.0.0.1/x"}}),
                  json.dumps({"event": "paused", "data": {}})):
        fake.frames.put_nowait(frame)
    await until(lambda: hass.states.get("switch.fake_queue_paused").state == "on",
                message="the pause after the junk")
    state = hass.states.get(last)
    assert state is not None
    # Cut to what a state holds, so the sensor keeps its value and its attributes.
    assert len(state.state) == 255 and state.state.startswith("A Reddit post's title")
    assert state.attributes["url"] == "http://127.0.0.1/x"
    assert entry.runtime_data.data.tasks == {}


async def test_long_texts_are_cut_to_what_home_assistant_holds(
        hass: HomeAssistant, fake: FakeAppliance, caplog: pytest.LogCaptureFixture) -> None:
    """A task's name becomes a device's and its entities' names, its fields and a download's
    attributes and event data: cut (names to 255 characters with their entity's, a text to
    2048), never a failed setup, an attribute the recorder drops (16 KiB at most) or an event
    whose data it drops (32 KiB)."""
    huge = "N" * 100_000
    fake.answers["/api/tasks"] = {"items": [{"id": 4, "name": huge, "url": "u" * 100_000,
                                             "folder": ["f"] * 10_000, "preset": 7}]}
    fake.answers["/api/engine/stats"] = {"download_folder_problem": "p" * 100_000}
    fake.answers["/api/history"] = {"items": [{"id": "z", "title": "t", "url": huge,
                                               "finished_at": 10**400, "preset": 1.5}]}
    fake.answers["/api/system/configuration"] = lambda _: {
        "app": {"version": huge}, "queue": [], "websocket": {"port": fake.port}}
    entry = await loaded(hass, fake)
    assert entry.state is ConfigEntryState.LOADED
    registry = dr.async_get(hass)
    appliance = registry.async_get_device({(DOMAIN, INSTANCE)})
    task = registry.async_get_device({(DOMAIN, f"{INSTANCE}_task_4")})
    assert appliance is not None and task is not None
    assert appliance.sw_version == "N" * 254 + "…"
    assert task.name == "N" * 199 + "…"
    # The appliance's device is there before its platforms: the task's hangs under it.
    assert task.via_device_id == appliance.id and "via_device" not in caplog.text
    switch_id = er.async_get(hass).async_get_entity_id("switch", DOMAIN,
                                                        f"{INSTANCE}_task_4_enabled")
    switch = hass.states.get(switch_id or "")
    assert switch is not None and switch.attributes["friendly_name"] == task.name + " Enabled"
    assert switch.attributes["url"] == "u" * 2047 + "…"
    assert switch.attributes["folder"] == str(["f"] * 10_000)[:2047] + "…"
    assert (switch.attributes["preset"], switch.attributes["task_id"]) == (7, 4)
    last = hass.states.get("sensor.fake_last_finished").attributes
    assert (last["url"], last["finished_at"], last["preset"]) == (
        "N" * 2047 + "…", str(10**400), 1.5)  # JSON writes no number that long
    problem = hass.states.get("binary_sensor.fake_download_folder_s_disk")
    assert problem.attributes["problem"] == "p" * 2047 + "…"
    failed = async_capture_events(hass, f"{DOMAIN}_download_failed")
    fake.frames.put_nowait(json.dumps({"event": "item_error", "data": {
        "id": "i" * 100_000, "title": huge, "url": huge, "preset": huge, "folder": huge,
        "filename": huge, "error": huge, "status": huge}}))
    await until(lambda: failed, message="the failure's event")
    data = failed[0].data
    assert {key: len(value) for key, value in data.items() if key != "instance_id"} == \
        dict.fromkeys(("id", "title", "url", "preset", "folder", "filename", "error",
                       "status"), 2048)
    assert len(json.dumps(data)) < 32 * 1024


async def test_a_flood_of_new_queue_ids_is_followed_up_to_a_bound(
        hass: HomeAssistant, fake: FakeAppliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only each item's status and speed are kept, for at most MAX_QUEUE items: a service
    naming a new id in every event (or a queue of a hundred thousand, each some KiB) must not
    fill Home Assistant's memory."""
    monkeypatch.setattr(coordinator, "MAX_QUEUE", 50)
    entry = await loaded(hass, fake)
    for n in range(120):
        fake.frames.put_nowait(json.dumps({"event": "item_added", "data": {
            "id": f"i{n}", "kind": "queue", "status": "pending", "title": "t" * 1000}}))
    for frame in ({"event": "item_updated", "data": {"id": "i0", "status": "downloading",
                                                      "speed": 1000, "eta": 5}},
                  {"event": "item_updated", "data": {"id": "i60", "status": "downloading",
                                                      "speed": 1000}},
                  {"event": "item_completed", "data": {"id": "i1", "status": "finished"}},
                  {"event": "item_added", "data": {"id": "i61", "status": "pending"}},
                  {"event": "paused", "data": {}}):
        fake.frames.put_nowait(json.dumps(frame))
    await until(lambda: hass.states.get("switch.fake_queue_paused").state == "on",
                message="the frame after the flood")
    queue = entry.runtime_data.data.queue
    assert list(queue) == [f"i{n}" for n in (0, *range(2, 50), 61)]
    assert queue["i0"] == {"status": "downloading", "speed": 1000}
    assert all(queue[f"i{n}"] == {"status": "pending"} for n in (*range(2, 50), 61))
    assert hass.states.get("sensor.fake_queued_downloads").state == "49"
    assert hass.states.get("sensor.fake_active_downloads").state == "1"


async def test_what_is_kept_of_each_item_and_task_is_bounded(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    """The queue keeps up to MAX_QUEUE items and the tasks up to MAX_TASKS, for the entry's
    life: each must be small (an event may be 4 MiB), or a service naming a new item or task
    in every event fills Home Assistant's memory all the same."""
    huge = "x" * 1_000_000
    fake.answers["/api/tasks"] = {"items": [{"id": 1, "name": "t", "notes": huge,
                                             "url": huge}]}
    entry = await loaded(hass, fake)
    for frame in ({"event": "item_added", "data": {"id": "i" * 1000, "status": "pending"}},
                  {"event": "item_added", "data": {"id": "a", "status": huge}},
                  {"event": "item_updated", "data": {"id": "b", "status": "downloading",
                                                      "speed": 10**400}},
                  {"event": "config_update", "data": {"feature": "tasks", "action": "create",
                                                      "data": {"id": 2, "name": huge,
                                                               "enabled": True,
                                                               "notes": huge}}},
                  {"event": "paused", "data": {}}):
        fake.frames.put_nowait(json.dumps(frame))
    await until(lambda: hass.states.get("switch.fake_queue_paused").state == "on",
                message="the frames")
    data = entry.runtime_data.data
    assert set(data.queue) == {"a", "b"}
    assert data.queue["a"] == {"status": "x" * 254 + "…"}
    assert data.speed == 0.0 and data.active == 1
    assert data.tasks == {1: {"id": 1, "name": "t", "url": "x" * 2047 + "…"},
                          2: {"id": 2, "name": "x" * 2047 + "…", "enabled": True}}
    assert hass.states.get("sensor.fake_active_downloads").state == "1"


async def test_a_flood_of_new_tasks_is_shown_up_to_a_bound(
        hass: HomeAssistant, fake: FakeAppliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each task is a device and two entities that Home Assistant keeps on disk."""
    monkeypatch.setattr(coordinator, "MAX_TASKS", 3)
    fake.answers["/api/tasks"] = {"items": [{"id": n, "name": f"t{n}"} for n in (1, 2, 3, 4)]}
    entry = await loaded(hass, fake)
    assert list(entry.runtime_data.data.tasks) == [1, 2, 3]
    for data in ({"id": 9, "name": "new"}, {"id": 2, "name": "renamed"}):
        fake.frames.put_nowait(json.dumps({"event": "config_update", "data": {
            "feature": "tasks", "action": "create", "data": data}}))
    fake.frames.put_nowait(json.dumps({"event": "config_update", "data": {
        "feature": "tasks", "action": "delete", "data": {"id": 3}}}))
    fake.frames.put_nowait(json.dumps({"event": "config_update", "data": {
        "feature": "tasks", "action": "create", "data": {"id": 10, "name": "room again"}}}))
    fake.frames.put_nowait(json.dumps({"event": "paused", "data": {}}))
    await until(lambda: hass.states.get("switch.fake_queue_paused").state == "on",
                message="the frame after the tasks")
    tasks = entry.runtime_data.data.tasks
    assert {task_id: task["name"] for task_id, task in tasks.items()} == {
        1: "t1", 2: "renamed", 10: "room again"}
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert sorted(device.name for device in devices) == ["Fake", "renamed", "room again", "t1"]
