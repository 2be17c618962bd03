"""``appliance tui`` (Textual's pilot) against the real service while things move under it:
the service restarted with its websocket on another port, an item that ends while the person
confirms its deletion."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest
import requests
from support.origin import MediaOrigin
from support.server import Server, free_port_pair
from support.tui_pilot import connected, drive, select, text_of, until
from textual.pilot import Pilot
from textual.widgets import Static

from appliance.client import ApiClient, Connection
from appliance.tui.app import ApplianceApp
from appliance.tui.screens.confirm import DeleteScreen

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("tui")]


class MovedServer(Server):
    """A service whose websocket is on ``YTP_WS_PORT``, not next to its HTTP port."""

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"server exited: {self.log()[-3000:]}")
        try:
            if not requests.get(self.url + "/api/ping", timeout=1).ok:
                return False
        except requests.ConnectionError:
            return False
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", int(self.env["YTP_WS_PORT"]))) == 0


def test_a_restart_with_the_websocket_elsewhere_is_followed(
        make_server: Callable[..., Server], origin: MediaOrigin) -> None:
    """The feed retried the websocket address it started with: a service restarted with
    another YTP_WS_PORT left the TUI disconnected (its HTTP calls working) until it was
    restarted too. It reads the address again from the configuration."""
    server = make_server("moved")
    app = ApplianceApp(ApiClient(Connection(server.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await asyncio.to_thread(server.stop)
        await until(pilot, lambda: app.screen.query_one("#banner").display, "the banner")
        moved = MovedServer(server.root, {**server.env, "YTP_WS_PORT": str(free_port_pair())},
                            port=server.port)
        await asyncio.to_thread(moved.start)
        try:
            await until(pilot, lambda: not app.screen.query_one("#banner").display,
                        "connected again", seconds=60)
            added = moved.post("/api/history", {"url": origin.clip_url}).json()[0]["id"]
            await until(pilot, lambda: app.model.items.get(added, {}).get("status") ==
                        "finished", "the item's events, from the new port")
        finally:
            await asyncio.to_thread(moved.stop)

    drive(app, scenario)
    assert not app.crash_report


def test_an_item_that_ends_while_its_deletion_is_confirmed_is_deleted(
        make_server: Callable[..., Server], origin: MediaOrigin) -> None:
    """Asked to delete a waiting item, the person confirms after it has finished: it is
    deleted from the history (it was "not found" in the queue, the item and its file kept)."""
    server = make_server("race")
    server.post("/api/system/pause", {})
    item_id = server.post("/api/history", {"url": origin.clip_url}).json()[0]["id"]
    app = ApplianceApp(ApiClient(Connection(server.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await until(pilot, lambda: app.model.items.get(item_id, {}).get("kind") == "queue",
                    "the waiting item")
        await pilot.pause(0.6)  # (the row: the queue repaints twice a second)
        select(app, "queue-table", item_id)
        item = app.model.items[item_id]
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DeleteScreen), "the question")
        question = str(app.screen.query(Static).first().render())
        assert question == f"Delete {item.get('title') or origin.clip_url}?"
        await asyncio.to_thread(server.post, "/api/system/resume", {})
        await until(pilot, lambda: app.model.items.get(item_id, {}).get("status") ==
                    "finished", "the item finished meanwhile", seconds=60)
        await pilot.press("y")
        await until(pilot, lambda: item_id not in app.model.items, "the item deleted")
        assert server.get(f"/api/history/{item_id}").status_code == 404
        # (the totals repaint twice a second: the resume may not be shown yet)
        await until(pilot, lambda: "PAUSED" not in text_of(app, "#totals-text"),
                    "the queue shown resumed")

    drive(app, scenario)
    assert not app.crash_report
