"""YTPTube's protocol on ``/ws``: the hello, client commands (``add_url``, ``item_*``) and
their answers. Frames are ``{"event", "data"}`` from the client and ``{"event", "data": Event}``
to it (:func:`appliance.events.envelope`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection

from appliance import errors, events
from appliance.json_input import load_json
from appliance.ws.clients import Client
from appliance.ws.frames import encode

if TYPE_CHECKING:
    from appliance.ws.server import WebsocketService

log = logging.getLogger("appliance.ws")

YTPTUBE = "ytptube"

# Client → server commands on /ws and the title of the log_error sent when one fails.
COMMAND_TITLES = {
    "add_url": "Add URL failed",
    "item_cancel": "Cancel failed",
    "item_delete": "Delete failed",
    "item_start": "Start failed",
    "item_pause": "Pause failed",
}

# A client's next command waits while this many state frames wait for it: one that sends
# commands and never reads their answers holds a few of them, not its whole backlog's cap
# (10,000 frames, 16 MiB) of its own, for each of its sockets.
COMMAND_WINDOW = 100

# Messages longer than this are read in the service's threads, not on the loop: reading one
# of 1 MiB (half a million numbers) and checking its depth took 150 ms, while no client got a
# frame and no handshake went on; a client that read its answers could send them back to
# back (the command window holds back only one that does not).
PARSED_ON_LOOP = 64 * 1024

# Failed ids a command reports one log_error each; the others in one more. A reply per id of
# a long list filled the client's buffer at once (closed as "too slow", having read nothing).
REPORTED_FAILURES = 10


def _ids(event: str, data: Any) -> list[str]:
    if isinstance(data, str) and data.strip():
        return [data]
    if (
        isinstance(data, list)
        and data
        and all(isinstance(i, str) and i.strip() for i in data)
    ):
        return list(data)
    raise errors.invalid(f"{event}: data must be an item id or a non-empty list of item ids.")


class YtptubeProtocol:
    """The ``/ws`` half of :class:`appliance.ws.server.WebsocketServer` (loop thread only)."""

    _service: WebsocketService
    _ytp_clients: dict[str, Client]

    # The server's own (see WebsocketServer): a client for a connection while it lasts,
    # and a blocking service call run in its thread pool.
    _connected: Callable[[ServerConnection, str, dict[str, Client]],
                         AbstractAsyncContextManager[Client]]
    _call: Callable[..., asyncio.Future[Any]]

    _commands: dict[str, Callable[[Client, Any], Any]]

    async def _serve_ytptube(self, connection: ServerConnection) -> None:
        async with self._connected(connection, YTPTUBE, self._ytp_clients) as client:
            hello = encode(events.envelope("connected", {"sid": client.sid,
                                                        "timestamp": time.time()}))
            assert hello is not None
            client.send(hello)  # before it is registered: the hello comes first
            self._ytp_clients[client.sid] = client
            client.start()
            async for raw in connection:
                await client.buffer.below(COMMAND_WINDOW)
                await self._handle_command(client, raw)

    def _reply(self, client: Client, event: str, data: dict[str, Any]) -> None:
        frame = encode(events.envelope(event, data))
        if frame is not None:
            client.send(frame)

    def _reply_error(self, client: Client, title: str, message: str, code: str) -> None:
        self._reply(client, events.LOG_ERROR, {
            "title": title, "message": message, "code": code, "timestamp": time.time(),
        })

    @staticmethod
    def _parse(raw: str | bytes) -> tuple[str, Any]:
        try:
            message = load_json(raw)
        except orjson.JSONDecodeError:
            raise errors.invalid("Message is not valid JSON.") from None
        if not isinstance(message, dict):
            raise errors.invalid('Message must be a JSON object: {"event": ..., "data": ...}.')
        event = message.get("event")
        if not isinstance(event, str) or event not in COMMAND_TITLES:
            raise errors.invalid(
                f"Unknown event {event!r}; expected one of {', '.join(COMMAND_TITLES)}."
            )
        return event, message.get("data")

    async def _handle_command(self, client: Client, raw: str | bytes) -> None:
        event = None
        try:
            if len(raw) > PARSED_ON_LOOP:
                event, data = await self._call(self._parse, raw)
            else:
                event, data = self._parse(raw)
            await self._commands[event](client, data)
        except errors.AppError as exc:
            title = COMMAND_TITLES.get(event or "", "Invalid message")
            self._reply_error(client, title, exc.message, exc.code)
        except Exception:
            log.exception("websocket command %s from client %s failed", event, client.sid)
            self._reply_error(
                client, COMMAND_TITLES.get(event or "", "Internal error"),
                f"The server failed to handle {event}; see the server log.",
                errors.INTERNAL_ERROR,
            )

    def _report(self, client: Client, event: str, results: dict[str, str]) -> None:
        failed = [f"{item_id}: {outcome}" for item_id, outcome in results.items()
                  if outcome != "ok"]
        more = len(failed) - REPORTED_FAILURES
        if more > 0:
            failed[REPORTED_FAILURES:] = [f"{more} more items failed too."]
        for message in failed:
            self._reply_error(client, COMMAND_TITLES[event], message, errors.INVALID_REQUEST)

    async def _cmd_add_url(self, client: Client, data: Any) -> None:
        if not isinstance(data, dict):
            raise errors.invalid('add_url: data must be an object like {"url": "..."}.')
        items = await self._call(self._service.add, [data])
        if not items:
            self._reply(client, events.LOG_WARNING, {
                "title": "Add URL", "message": "Nothing was added to the queue.",
                "timestamp": time.time(),
            })
        for item in items:
            self._reply(client, events.ITEM_STATUS, {
                **item, "id": item.get("id"), "status": "queued",
                "message": "Item added to queue",
            })

    async def _cmd_cancel(self, client: Client, data: Any) -> None:
        if not isinstance(data, str) or not data.strip():
            raise errors.invalid("item_cancel: data must be an item id.")
        self._report(client, "item_cancel", await self._call(self._service.cancel, [data]))

    async def _cmd_delete(self, client: Client, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise errors.invalid(
                'item_delete: data must be an object like {"id": "...", "remove_file": false}.'
            )
        remove_file = data.get("remove_file", False)
        if not isinstance(remove_file, bool):
            raise errors.invalid("item_delete: remove_file must be true or false.")
        results = await self._call(self._service.delete, [data["id"]], remove_file=remove_file)
        self._report(client, "item_delete", results)

    async def _cmd_start(self, client: Client, data: Any) -> None:
        ids = _ids("item_start", data)
        self._report(client, "item_start", await self._call(self._service.start, ids))

    async def _cmd_pause(self, client: Client, data: Any) -> None:
        ids = _ids("item_pause", data)
        self._report(client, "item_pause", await self._call(self._service.pause, ids))
