"""A small HTTP and websocket server on 127.0.0.1 that plays the appliance for the hostile
tests: what it answers is what each test sets (the real service never answers junk)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web
from homeassistant import config_entries
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.appliance.const import DOMAIN

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
        # The base path it answers under too (a reverse proxy's prefix, "/ytp").
        self.prefix = ""
        self.paths: list[str] = []
        # Every Authorization header it was sent (HTTP and websocket): credentials it got.
        self.authorizations: list[str] = []
        self.streams_opened = 0
        # Called as each stream opens (in Home Assistant's loop: it may read its state).
        self.on_stream: Callable[[], None] | None = None
        self.close_streams_at_once = False
        # Set: /ws reads nothing its client sends (a ping is never answered), as a service
        # whose power was cut answers nothing.
        self.deaf = False
        # Set: /ws takes the connection and answers nothing until the event is set.
        self.ws_held: asyncio.Event | None = None
        # Set: /ws answers what this function of the request gives (a redirect, say).
        self.ws_answer: Answer | None = None
        self.frames: asyncio.Queue[str | None] = asyncio.Queue()
        self._streams = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1") -> None:
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0)
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
        # (the real service answers under its base path and without it alike)
        answer = self.answers.get(request.path.removeprefix(self.prefix)
                                  if self.prefix else request.path)
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
        if self.ws_answer is not None:
            answer: web.WebSocketResponse = self.ws_answer(request)
            return answer
        websocket = web.WebSocketResponse()
        await websocket.prepare(request)
        self.streams_opened += 1
        if self.on_stream is not None:
            self.on_stream()
        if self.close_streams_at_once:
            await websocket.close()
            return websocket
        self._streams += 1
        # Reading answers the client's close at once, as a real server does.
        reading = asyncio.ensure_future(asyncio.Event().wait() if self.deaf
                                        else websocket.receive())
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


def fake_entry(hass: HomeAssistant, fake: FakeAppliance) -> MockConfigEntry:
    entry = MockConfigEntry(domain=DOMAIN, title="Fake", unique_id=INSTANCE,
                            data={CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
    entry.add_to_hass(hass)
    return entry


async def loaded(hass: HomeAssistant, fake: FakeAppliance) -> MockConfigEntry:
    entry = fake_entry(hass, fake)
    async with asyncio.timeout(60):  # a client that loops for ever fails here, not hangs
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    return entry


async def user_form(hass: HomeAssistant, form: dict[str, Any]) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER})
    async with asyncio.timeout(60):
        return dict(await hass.config_entries.flow.async_configure(result["flow_id"], form))
