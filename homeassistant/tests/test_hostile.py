"""A broken or hostile appliance, and hostile input in the forms and actions.

The real service never answers junk, so here a small HTTP and websocket server on 127.0.0.1
plays the appliance (``FakeAppliance``): what it answers is what each test sets. Where the
real service can give the answer (a 421 for a host name it does not answer to) it does: the
fake one forwards to it, as a reverse proxy under a public name would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from ipaddress import ip_address
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from homeassistant import config_entries
from homeassistant.components import media_source
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_TOKEN,
    CONF_USERNAME,
    EVENT_STATE_CHANGED,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.appliance import api, coordinator
from custom_components.appliance.const import DOMAIN
from support.server import Server, free_port_pair

from .conftest import allow_loopback, entry_data, instance_id, load_entry, until

INSTANCE = "ab" * 16
Answer = Callable[[web.Request], Any]


class FakeAppliance:
    """Answers ``answers[path]`` (JSON, or a ``web.Response``, or a function of the request
    giving one of those); a valid minimal appliance by default. Its ``/ws`` sends what is
    put in ``frames`` (text as it is)."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {
            "/api/health": {"instance_id": INSTANCE, "version": "1.0"},
            "/api/system/configuration": lambda _: {
                "app": {"version": "1.0"}, "paused": False, "queue": [], "presets": [],
                "websocket": {"port": self.port, "path": "/ws"}},
            "/api/engine/stats": {"failed": 0},
            "/api/history": {"items": []},
            "/api/tasks": {"items": [], "pagination": {"has_next": False}},
        }
        self.paths: list[str] = []
        # Every Authorization header it was sent (HTTP and websocket): credentials it got.
        self.authorizations: list[str] = []
        self.streams_opened = 0
        self.close_streams_at_once = False
        # Set: /ws takes the connection and answers nothing until the event is set.
        self.ws_held: asyncio.Event | None = None
        self.frames: asyncio.Queue[str | None] = asyncio.Queue()
        self._streams = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for _ in range(self._streams):  # each open /ws handler ends on a None
            self.frames.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.raw_path)
        if "Authorization" in request.headers:
            self.authorizations.append(request.headers["Authorization"])
        answer = self.answers.get(request.path)
        if answer is None:
            return web.json_response({"error": "not found", "code": "NOT_FOUND"}, status=404)
        if callable(answer):
            answer = answer(request)
            if asyncio.iscoroutine(answer):
                answer = await answer
        if isinstance(answer, web.StreamResponse):
            return answer
        return web.json_response(answer)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        if "Authorization" in request.headers:
            self.authorizations.append(request.headers["Authorization"])
        if self.ws_held is not None:
            await self.ws_held.wait()
        websocket = web.WebSocketResponse()
        await websocket.prepare(request)
        self.streams_opened += 1
        if self.close_streams_at_once:
            await websocket.close()
            return websocket
        self._streams += 1
        # Reading answers the client's close at once, as a real server does.
        reading = asyncio.ensure_future(websocket.receive())
        try:
            while True:
                getting = asyncio.ensure_future(self.frames.get())
                await asyncio.wait({reading, getting}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    break
                if (frame := getting.result()) is None:
                    break
                await websocket.send_str(frame)
        finally:
            self._streams -= 1
            reading.cancel()
        await websocket.close()
        return websocket


@pytest.fixture
async def fake(hass: HomeAssistant) -> AsyncIterator[FakeAppliance]:
    server = FakeAppliance()
    await server.start()
    yield server
    for entry in hass.config_entries.async_entries(DOMAIN):
        await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    await server.stop()


def _entry(hass: HomeAssistant, fake: FakeAppliance) -> MockConfigEntry:
    entry = MockConfigEntry(domain=DOMAIN, title="Fake", unique_id=INSTANCE,
                            data={CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
    entry.add_to_hass(hass)
    return entry


async def _loaded(hass: HomeAssistant, fake: FakeAppliance) -> MockConfigEntry:
    entry = _entry(hass, fake)
    async with asyncio.timeout(60):  # a client that loops for ever fails here, not hangs
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    return entry


async def _user_form(hass: HomeAssistant, form: dict[str, Any]) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER})
    async with asyncio.timeout(60):
        return dict(await hass.config_entries.flow.async_configure(result["flow_id"], form))


# --- the config flow ------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["http://127.0.0.1", "127.0.0.1/api", "me@127.0.0.1",
                                  "127.0.0.1:8081", "127.0.0.1?x", "::1]", " "])
async def test_a_host_that_is_not_a_host_name(hass: HomeAssistant, host: str) -> None:
    """What would make another URL than the appliance's is refused before any request."""
    result = await _user_form(hass, {CONF_HOST: host, CONF_PORT: 8081})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_HOST: "invalid_host"}


@pytest.mark.parametrize("port", [0, 65536, "http"])
async def test_a_port_that_is_no_port(hass: HomeAssistant, port: Any) -> None:
    with pytest.raises(InvalidData):
        await _user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: port})


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
    result = await _user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
    assert result["errors"] == {"base": "not_appliance"}
    assert "/api/health" in result["description_placeholders"]["error"]


async def test_a_redirect_is_not_followed(hass: HomeAssistant, fake: FakeAppliance) -> None:
    fake.answers["/api/health"] = web.Response(
        status=302, headers={"Location": "http://127.0.0.1:1/elsewhere"})
    result = await _user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
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
    result = await _user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
    assert result["errors"] == {"base": "not_appliance"}
    assert "more than 10000 bytes" in result["description_placeholders"]["error"]


async def test_too_many_attempts_is_not_failed_to_connect(hass: HomeAssistant,
                                                          fake: FakeAppliance) -> None:
    """The service's 429 (login throttling) is its refusal, with its reason."""
    fake.answers["/api/system/configuration"] = web.json_response(
        {"error": "Too many failed attempts; try again later.", "code": "TOO_MANY_REQUESTS"},
        status=429, headers={"Retry-After": "1"})
    result = await _user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
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
    result = await _user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
    assert result["errors"] == {"base": "refused"}
    error = result["description_placeholders"]["error"]
    assert "'downloads.example.com'" in error and "YTP_ALLOWED_HOSTS" in error


def _announcement(instance: str, port: int) -> ZeroconfServiceInfo:
    return ZeroconfServiceInfo(
        ip_address=ip_address("127.0.0.1"), ip_addresses=[ip_address("127.0.0.1")],
        hostname="evil.local.", name="appliance evil._appliance._tcp.local.", port=port,
        type="_appliance._tcp.local.", properties={"id": instance, "version": "1"})


async def test_a_stranger_announcing_a_known_id_gets_no_credentials(
        hass: HomeAssistant, fake: FakeAppliance, appliance: Server) -> None:
    """Anyone on the network may announce the id of the person's appliance (every
    announcement and /api/health show it) at their own address: the entry stays where its
    appliance answers, and its token goes nowhere else."""
    entry = await load_entry(hass, appliance)
    fake.answers["/api/health"] = {"instance_id": instance_id(appliance)}
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF},
        data=_announcement(instance_id(appliance), fake.port))
    await hass.async_block_till_done()
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
    fake.answers["/api/health"] = {"instance_id": instance_id(appliance)}
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_ZEROCONF},
        data=_announcement(instance_id(appliance), fake.port))
    await hass.async_block_till_done()
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
        "app": "1.0", "paused": "no", "presets": ["video", {"name": 3}, {"name": "audio"}],
        "queue": [1, {"no": "id"}, {"id": "a", "status": "downloading", "speed": "fast"},
                  {"id": "b", "status": "downloading", "speed": 1000},
                  {"id": "c", "status": "downloading", "speed": float("nan")},
                  {"id": "d", "status": "downloading", "speed": float("-inf")}],
        "websocket": {"port": fake.port, "path": "/ws"}}
    fake.answers["/api/engine/stats"] = {"failed": "many"}
    fake.answers["/api/health"] = {"instance_id": INSTANCE, "download_path_free_bytes": "lots"}
    fake.answers["/api/tasks"] = {"items": [{"id": True}, {"id": "3"}, "x",
                                            {"id": 4, "name": ["a", "list"]}]}
    fake.answers["/api/history"] = {"items": ["not an item"]}
    entry = await _loaded(hass, fake)
    assert entry.state is ConfigEntryState.LOADED
    data = entry.runtime_data.data
    assert (data.version, data.paused, data.presets) == ("", False, ["audio"])
    assert (data.active, data.speed, data.failed, data.disk_free) == (4, 1000.0, 0, None)
    assert list(data.tasks) == [4]
    assert data.last_finished is None
    assert hass.states.get("switch.fake_queue_paused").state == "off"


async def test_the_services_reason_for_a_server_error_is_shown(hass: HomeAssistant,
                                                               fake: FakeAppliance) -> None:
    fake.answers["/api/engine/stats"] = lambda _: web.json_response(
        {"error": "database is locked", "code": "UNAVAILABLE"}, status=503)
    entry = await _loaded(hass, fake)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.error_reason_translation_key == "cannot_connect"
    assert entry.error_reason_translation_placeholders["error"] == (
        "HTTP 503: database is locked")


async def test_a_paused_switch_shows_what_it_was_told_at_once(hass: HomeAssistant,
                                                             fake: FakeAppliance) -> None:
    """The service announces a pause on its event stream too; the switch does not wait for
    it (this one never announces anything)."""
    fake.answers["/api/system/pause"] = {"paused": True}
    fake.answers["/api/system/resume"] = {"paused": False}
    await _loaded(hass, fake)
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
    entry = await _loaded(hass, fake)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.data.tasks == {}
    # 406: already in the state asked for, which is no failure.
    await hass.services.async_call("switch", "turn_on",
                                   {"entity_id": "switch.fake_queue_paused"}, blocking=True)
    assert hass.states.get("switch.fake_queue_paused").state == "on"


async def test_an_empty_or_odd_folder_problem_is_none(hass: HomeAssistant,
                                                      fake: FakeAppliance) -> None:
    fake.answers["/api/engine/stats"] = {"failed": 0, "download_folder_problem": ""}
    await _loaded(hass, fake)
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
    entry = await _loaded(hass, fake)
    for answer, key in ((lambda _: web.json_response({"error": "busy"}, status=503),
                         "cannot_connect"),
                        ({"not": "a list"}, "bad_answer")):
        fake.answers["/api/history"] = lambda request, answer=answer: (
            answer(request) if callable(answer) and request.method == "POST"
            else answer if request.method == "POST" else {"items": []})
        with pytest.raises(HomeAssistantError) as failed:
            await hass.services.async_call(
                DOMAIN, "add_url", {"config_entry_id": entry.entry_id, "url": "http://x/"},
                blocking=True, return_response=True)
        assert (failed.value.translation_domain, failed.value.translation_key) == (
            DOMAIN, key)


async def test_tasks_that_never_end_are_an_error_not_a_hang(hass: HomeAssistant,
                                                            fake: FakeAppliance) -> None:
    fake.answers["/api/tasks"] = {"items": [{"id": 1}], "pagination": {"has_next": True}}
    entry = await _loaded(hass, fake)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    # The reason is shown on the entry (Home Assistant's own first refresh gives none).
    assert entry.error_reason_translation_key == "bad_answer"
    assert "more than 100 pages" in entry.error_reason_translation_placeholders["error"]


@pytest.mark.parametrize("websocket", [{"port": "8082"}, {"port": 70000}, {"path": "ws"}])
async def test_a_websocket_that_is_nowhere(hass: HomeAssistant, fake: FakeAppliance,
                                           websocket: dict[str, Any]) -> None:
    fake.answers["/api/system/configuration"] = {"websocket": websocket}
    entry = await _loaded(hass, fake)
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
        entry = await _loaded(hass, fake)
    finally:
        fake.ws_held.set()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.error_reason_translation_key == "cannot_connect"
    assert "websocket" in entry.error_reason_translation_placeholders["error"]


async def test_junk_on_the_event_stream_does_not_end_it(hass: HomeAssistant,
                                                        fake: FakeAppliance) -> None:
    entry = await _loaded(hass, fake)
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
    entry = await _loaded(hass, fake)
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
    entry = await _loaded(hass, fake)
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
    entry = await _loaded(hass, fake)
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
    entry = await _loaded(hass, fake)
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


# --- actions and the media browser ----------------------------------------------------------

async def test_an_item_id_names_no_other_endpoint(hass: HomeAssistant,
                                                  fake: FakeAppliance) -> None:
    entry = await _loaded(hass, fake)
    with pytest.raises(ServiceValidationError, match="not found"):
        await hass.services.async_call(
            DOMAIN, "retry", {"config_entry_id": entry.entry_id,
                              "item_id": "../system/configuration"},
            blocking=True, return_response=True)
    assert fake.paths[-1] == "/api/history/..%2Fsystem%2Fconfiguration"


async def test_a_status_that_is_no_text_is_not_a_traceback(hass: HomeAssistant,
                                                           fake: FakeAppliance) -> None:
    """An item's status or an update's state that is a list (unhashable): the action says
    what it got, not "unknown error" with a TypeError in the log."""
    entry = await _loaded(hass, fake)
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
    await _loaded(hass, fake)
    with pytest.raises(HomeAssistantError) as failed:
        await hass.services.async_call("update", "install",
                                       {"entity_id": "update.fake_yt_dlp"}, blocking=True)
    assert failed.value.translation_key == "ytdlp_update_failed"
    assert failed.value.translation_placeholders == {"state": "running", "message": "pip runs"}
    fake.answers["/api/system/ytdlp/update"] = lambda _: web.json_response(
        {"error": "Unauthorized", "code": "UNAUTHORIZED"}, status=401)
    with pytest.raises(HomeAssistantError) as refused:
        await hass.services.async_call("update", "install",
                                       {"entity_id": "update.fake_yt_dlp"}, blocking=True)
    assert refused.value.translation_key == "invalid_auth"
    await hass.async_block_till_done()
    assert [flow["context"]["source"] for flow in
            hass.config_entries.flow.async_progress_by_handler(DOMAIN)] == ["reauth"]


async def test_a_run_now_refused_for_the_credentials_asks_for_new_ones(
        hass: HomeAssistant, fake: FakeAppliance) -> None:
    fake.answers["/api/tasks"] = {"items": [{"id": 4, "name": "Feed"}]}
    fake.answers["/api/tasks/4/execute"] = lambda _: web.json_response(
        {"error": "Unauthorized", "code": "UNAUTHORIZED"}, status=401)
    await _loaded(hass, fake)
    with pytest.raises(HomeAssistantError) as refused:
        await hass.services.async_call("button", "press",
                                       {"entity_id": "button.feed_run_now"}, blocking=True)
    assert refused.value.translation_key == "invalid_auth"
    await hass.async_block_till_done()
    assert [flow["context"]["source"] for flow in
            hass.config_entries.flow.async_progress_by_handler(DOMAIN)] == ["reauth"]


async def test_a_file_ticket_to_elsewhere_is_not_played(hass: HomeAssistant,
                                                        fake: FakeAppliance) -> None:
    """The player gets a URL on the appliance, never one the appliance's answer points
    elsewhere ("http://host:port@evil.example/…")."""
    entry = await _loaded(hass, fake)
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
    await _loaded(hass, fake)
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
    result = await _user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port,
                                     **credentials})
    assert result["errors"] == {"base": "invalid_auth"}
    assert fake.paths == ["/api/health"]  # the open one only: nothing sent them


async def test_a_pasted_token_is_trimmed(hass: HomeAssistant, fake: FakeAppliance) -> None:
    result = await _user_form(hass, {CONF_HOST: " 127.0.0.1 ", CONF_PORT: fake.port,
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
    entry = await _loaded(hass, fake)
    await until(lambda: fake.streams_opened >= 6, message="six streams")
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
    await _loaded(hass, fake)
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
    await _loaded(hass, fake)
    fake.answers["/api/system/configuration"] = lambda _: web.json_response(
        {"error": "Unauthorized", "code": "UNAUTHORIZED"}, status=401)
    fake.frames.put_nowait(None)  # the service ends the stream
    await until(lambda: [flow["context"]["source"] for flow in
                         hass.config_entries.flow.async_progress_by_handler(DOMAIN)]
                == ["reauth"], message="the reauth flow")


async def test_releases_are_looked_for_again_later(hass: HomeAssistant,
                                                   fake: FakeAppliance) -> None:
    checks: list[str] = []

    def check(request: web.Request) -> Any:
        checks.append(request.path)
        return {"status": "up_to_date"}

    fake.answers["/api/system/check-updates"] = check
    await _loaded(hass, fake)
    assert len(checks) == 1
    async_fire_time_changed(hass, dt_util.utcnow() + coordinator.RELEASE_CHECK_INTERVAL
                            + timedelta(seconds=1))
    await until(lambda: len(checks) == 2, message="the next release check")


async def test_a_failed_catch_up_is_tried_again(hass: HomeAssistant, fake: FakeAppliance,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream reconnects but the snapshot that catches up fails (a 503 while the service
    starts): the link is tried again until a snapshot works, and the entities come back."""
    monkeypatch.setattr(coordinator, "RECONNECT_MIN", 0.01)
    await _loaded(hass, fake)
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
