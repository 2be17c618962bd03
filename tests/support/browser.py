"""A real browser for tests: Debian's Chromium, headless, driven over the DevTools protocol
(its websocket, with the `websockets` client the project has). Only what the tests ask:
open a page, evaluate an expression in it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import websockets

from .server import wait_for


class Page:
    """One tab: each call is one DevTools command and its answer."""

    def __init__(self, socket: Any) -> None:
        self._socket = socket
        self._last_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._last_id += 1
        await self._socket.send(json.dumps({"id": self._last_id, "method": method,
                                            "params": params}))
        while True:  # events arrive between answers; only ours is waited for
            message = json.loads(await self._socket.recv())
            if message.get("id") == self._last_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]

    async def evaluate(self, expression: str) -> Any:
        answer = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return answer["result"].get("value")

    async def until(self, expression: str, holds: Callable[[Any], bool],
                    what: str = "the page") -> Any:
        """The expression's value once ``holds`` says so; fails after 30 s."""
        value = None
        try:
            async with asyncio.timeout(30):
                while True:  # the page tells no event for this: asked until it holds
                    value = await self.evaluate(expression)
                    if holds(value):
                        return value
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(
                f"timed out waiting for {what}: {expression} is {value!r}") from None


class Chromium:
    def __init__(self, profile: Path) -> None:
        binary = shutil.which("chromium")
        if binary is None:  # bootstrap.sh test installs it: its absence is a failure
            raise AssertionError("chromium is not installed (./bootstrap.sh test installs it)")
        # A port the browser picks itself, written into the profile: no race for a free one.
        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             # a click on a link lets a media page play; a test has no click
             "--autoplay-policy=no-user-gesture-required", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ports = profile / "DevToolsActivePort"
        self.port = int(wait_for(lambda: ports.is_file() and ports.read_text().split()[0],
                                 timeout=60, message="chromium's DevTools port"))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def _tab(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list") as answer:
            pages = [t for t in json.load(answer) if t["type"] == "page"]
        return pages[0]["webSocketDebuggerUrl"]

    async def visit(self, url: str, check: Callable[[Page], Any]) -> Any:
        """``url`` opened in the tab, then ``check(page)`` awaited; its result."""
        async with websockets.connect(self._tab(), max_size=None) as socket:
            page = Page(socket)
            await page.call("Page.navigate", url=url)
            return await check(page)


@contextmanager
def chromium(profile: Path) -> Iterator[Chromium]:
    browser = Chromium(profile)
    try:
        yield browser
    finally:
        browser.close()
