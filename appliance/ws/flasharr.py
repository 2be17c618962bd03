"""Flasharr's protocol on ``/api/ws``: server to client only — ``SYNC_ALL`` on connect,
``TASK_ADDED``/``TASK_UPDATED``/``TASK_REMOVED`` from bus events, and the timed
``TASK_BATCH_UPDATE`` and ``ENGINE_STATS`` while a Flasharr client is connected."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection

from appliance import events
from appliance.events import Event
from appliance.ws.clients import CLOSE_INTERNAL_ERROR, Client
from appliance.ws.frames import encode

if TYPE_CHECKING:
    from appliance.ws.server import WebsocketService

log = logging.getLogger("appliance.ws")

FLASHARR = "flasharr"

# Bus events that become Flasharr TASK_UPDATED (item_added → TASK_ADDED, item_deleted →
# TASK_REMOVED are handled on their own). Not item_moved: it repeats the item_updated sent
# just before it, and Flasharr has no frame for a move.
FLASHARR_UPDATES = frozenset({
    events.ITEM_UPDATED,
    events.ITEM_CANCELLED,
    events.ITEM_STATUS,
    events.ITEM_COMPLETED,
    events.ITEM_ERROR,
})


def _advance(deadline: float, interval: float, now: float) -> float:
    deadline += interval
    return deadline if deadline > now else now + interval


class FlasharrProtocol:
    """The ``/api/ws`` half of :class:`appliance.ws.server.WebsocketServer` (loop thread only)."""

    _service: WebsocketService
    _fa_clients: dict[str, Client]
    _ticker: asyncio.Task[None] | None
    _tick_failing: bool
    _batch_interval: float
    _stats_interval: float

    # The server's own (see WebsocketServer): a client for a connection while it lasts,
    # and a blocking service call run in its thread pool.
    _connected: Callable[[ServerConnection, str, dict[str, Client]],
                         AbstractAsyncContextManager[Client]]
    _call: Callable[..., asyncio.Future[Any]]

    def _dispatch_flasharr(self, event: Event) -> None:
        data = event.data
        if not isinstance(data, dict):
            return
        if event.name == events.ITEM_DELETED:
            if data.get("id") is None:
                return
            message: dict[str, Any] = {"type": "TASK_REMOVED", "task_id": data["id"]}
        elif event.name == events.ITEM_ADDED or event.name in FLASHARR_UPDATES:
            try:
                task = self._service.flasharr_task(data)
            except Exception:
                log.exception("flasharr_task failed for %s event", event.name)
                return
            kind = "TASK_ADDED" if event.name == events.ITEM_ADDED else "TASK_UPDATED"
            message = {"type": kind, "task": task}
        else:
            return
        frame = encode(message)
        if frame is None:
            return
        key = ("TASK_UPDATED", data.get("id")) if event.progress else None
        for client in tuple(self._fa_clients.values()):
            client.send(frame, key)

    async def _serve_flasharr(self, connection: ServerConnection) -> None:
        async with self._connected(connection, FLASHARR, self._fa_clients) as client:
            # Listen before taking the snapshot: an event racing the snapshot may arrive
            # twice (harmless upsert), never zero times.
            self._fa_clients[client.sid] = client
            self._ensure_ticker()
            try:
                tasks = await self._call(self._service.flasharr_tasks)
            except Exception:
                log.exception("flasharr_tasks failed; closing client %s", client.sid)
                await connection.close(CLOSE_INTERNAL_ERROR, "cannot list tasks")
                return
            frame = encode({"type": "SYNC_ALL", "tasks": tasks})
            if frame is None:
                await connection.close(CLOSE_INTERNAL_ERROR, "cannot encode tasks")
                return
            client.send_first(frame)
            client.start()
            async for _ in connection:  # the protocol has no client messages; ignore them
                pass

    def _ensure_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(
                self._tick_loop(), name="ws-flasharr-ticker"
            )

    async def _tick_loop(self) -> None:
        """TASK_BATCH_UPDATE and ENGINE_STATS timers. Ends (without awaiting anything after
        the check) as soon as no Flasharr client is connected, so an idle box never polls."""
        loop = asyncio.get_running_loop()
        next_batch = loop.time() + self._batch_interval
        next_stats = loop.time() + self._stats_interval
        while True:
            await asyncio.sleep(max(0.0, min(next_batch, next_stats) - loop.time()))
            if not self._fa_clients:
                return
            now = loop.time()
            if now >= next_batch:
                next_batch = _advance(next_batch, self._batch_interval, now)
                await self._tick(self._batch_snapshot, "TASK_BATCH_UPDATE", "tasks")
                if not self._fa_clients:
                    return
            if now >= next_stats:
                next_stats = _advance(next_stats, self._stats_interval, now)
                await self._tick(self._service.engine_stats, "ENGINE_STATS", "stats")

    def _batch_snapshot(self) -> list[dict[str, Any]] | None:
        """(Pool thread.) The active downloads as Flasharr tasks, or None when idle."""
        if self._service.active_count() <= 0:
            return None
        return [self._service.flasharr_task(item) for item in self._service.active_items()]

    async def _tick(self, snapshot: Callable[[], Any], kind: str, field: str) -> None:
        try:
            value = await self._call(snapshot)
        except Exception:
            if not self._tick_failing:
                log.exception("websocket %s snapshot failed", kind)
            self._tick_failing = True
            return
        self._tick_failing = False
        if value is None:
            return
        frame = encode({"type": kind, field: value})
        if frame is None:
            return
        key: Hashable = (kind,)
        for client in tuple(self._fa_clients.values()):
            client.send(frame, key)
