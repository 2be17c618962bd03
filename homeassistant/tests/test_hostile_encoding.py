"""An answer sent compressed though no compression was asked for: aiohttp inflated what it
read whole, before the answer's bound looked."""

from __future__ import annotations

import tracemalloc
import zlib

from aiohttp import web
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant

from .fake_appliance import FakeAppliance, user_form


async def test_a_compressed_answer_is_not_inflated(hass: HomeAssistant,
                                                  fake: FakeAppliance) -> None:
    """An answer compressed a thousand to one, sent though no compression was asked for:
    aiohttp inflated what it read whole before the answer's bound looked (an answer of
    500 KB took 267 MiB of Home Assistant's memory at once)."""
    deflate = zlib.compressobj(9)
    body = b"".join([deflate.compress(b"["), *(deflate.compress(b" " * 2**20)
                                              for _ in range(256)), deflate.flush()])
    asked: list[str] = []

    def bomb(request: web.Request) -> web.Response:
        asked.append(request.headers.get("Accept-Encoding", ""))
        return web.Response(body=body, headers={"Content-Encoding": "deflate",
                                                "Content-Type": "application/json"})

    fake.answers["/api/health"] = bomb
    tracemalloc.start()
    try:
        result = await user_form(hass, {CONF_HOST: "127.0.0.1", CONF_PORT: fake.port})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert asked == ["identity"]
    assert result["errors"] == {"base": "not_appliance"}
    assert result["description_placeholders"]["error"] == (
        "/api/health: an answer encoded as deflate, which was not asked for")
    assert peak < 32 * 2**20
