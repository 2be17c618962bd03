"""The websocket sidecar: an asyncio ``websockets`` server in one daemon thread.

Two protocols on the same event bus:

- ``/ws`` (and ``{base_path}ws``): YTPTube's frames, ``{"event", "data"}`` from the client
  and ``{"event", "data": Event}`` to it, Event being ``{id, created_at, event, title,
  message, data: payload}`` (:func:`appliance.events.envelope`) for every event.
- ``/api/ws`` (and ``{base_path}api/ws``): Flasharr's ``{"type": ...}`` messages, server to
  client only (``SYNC_ALL``, ``TASK_ADDED``, ``TASK_UPDATED``, ``TASK_REMOVED``,
  ``TASK_BATCH_UPDATE``, ``ENGINE_STATS``).

The handshake refuses pages on foreign origins (403, see :mod:`appliance.auth.browsers`),
then authenticates like HTTP.

Threading: the bus calls :meth:`WebsocketServer._on_event` in engine threads; it only hands
the event to the loop with ``call_soon_threadsafe``. On the loop each event is encoded once
and queued into every client's own bounded buffer (see :mod:`appliance.ws.clients`), from
which that client's sender task writes. Blocking service calls (client commands, the Flasharr
snapshots) run in a small thread pool owned by the server, never on the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from http import HTTPStatus
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from appliance import errors, events
from appliance.auth import Authenticator
from appliance.config import Settings, SettingsHolder
from appliance.events import Event, EventBus
from appliance.ws.clients import CLOSE_INTERNAL_ERROR, Client
from appliance.ws.limits import HANDSHAKE_TIMEOUT, capped_connections

log = logging.getLogger("appliance.ws")

T = TypeVar("T")

THREAD_NAME = "ws-sidecar"
MAX_MESSAGE = 2**20  # client → server messages over 1 MiB are refused (close 1009)
YTPTUBE = "ytptube"
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

# Client → server commands on /ws and the title of the log_error sent when one fails.
COMMAND_TITLES = {
    "add_url": "Add URL failed",
    "item_cancel": "Cancel failed",
    "item_delete": "Delete failed",
    "item_start": "Start failed",
    "item_pause": "Pause failed",
}


class WebsocketService(Protocol):
    """What the sidecar needs from the engine's service layer.

    The command methods block and are called from the sidecar's thread pool. They raise
    :class:`appliance.errors.AppError` on bad input. ``start``/``pause``/``cancel``/``delete``
    return ``{id: "ok" | "<reason it failed>"}``. ``flasharr_task`` is called on the event
    loop for every bus event a Flasharr client listens to: it must be a cheap, pure mapping.
    """

    def add(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]: ...
    def start(self, ids: list[str]) -> dict[str, str]: ...
    def pause(self, ids: list[str]) -> dict[str, str]: ...
    def cancel(self, ids: list[str]) -> dict[str, str]: ...
    def delete(self, ids: list[str], remove_file: bool = False) -> dict[str, str]: ...
    def flasharr_tasks(self) -> list[dict[str, Any]]: ...
    def flasharr_task(self, item: dict[str, Any]) -> dict[str, Any]: ...
    def active_count(self) -> int: ...
    def active_items(self) -> list[dict[str, Any]]: ...
    def engine_stats(self) -> dict[str, Any]: ...


# --- helpers ----------------------------------------------------------------------------


def encode(obj: Any) -> bytes | None:
    """JSON bytes for a frame, or None (logged) when the object cannot be encoded."""
    try:
        return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        log.exception("cannot encode websocket frame %r", obj)
        return None


def _item_key(data: Any) -> Any:
    return data.get("id") if isinstance(data, dict) else None


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


def _advance(deadline: float, interval: float, now: float) -> float:
    deadline += interval
    return deadline if deadline > now else now + interval


# --- the server -------------------------------------------------------------------------


class WebsocketServer:
    """The sidecar. ``start()`` it once, ``stop()`` it once (stop is idempotent)."""

    def __init__(
        self,
        settings: Settings | SettingsHolder,
        bus: EventBus,
        service: WebsocketService,
        *,
        port: int | None = None,
        authenticator: Authenticator | None = None,
        max_state_backlog: int = 10_000,
        max_progress_backlog: int = 1_000,
        batch_interval: float = 0.5,
        stats_interval: float = 2.0,
        ping_interval: float | None = 10.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 3.0,
        service_threads: int = 4,
    ) -> None:
        self._settings = SettingsHolder.of(settings)
        # The service passes its one Authenticator (shared with HTTP: same file, throttle and
        # tickets); a stand-alone server makes its own from the settings.
        self._auth = authenticator or Authenticator(self._settings)
        self._bus = bus
        self._service = service
        # Where it listens is fixed when it starts (the API changes none of these settings).
        settings = self._settings.current
        self._host = settings.host
        self._requested_port = settings.websocket_port if port is None else port
        self._max_state = max_state_backlog
        self._max_progress = max_progress_backlog
        self._batch_interval = batch_interval
        self._stats_interval = stats_interval
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._service_threads = service_threads

        base = settings.base_path if settings.base_path.endswith("/") else settings.base_path + "/"
        self._routes = {"/ws": YTPTUBE, f"{base}ws": YTPTUBE,
                        "/api/ws": FLASHARR, f"{base}api/ws": FLASHARR}
        self._commands: dict[str, Callable[[Client, Any], Any]] = {
            "add_url": self._cmd_add_url,
            "item_cancel": self._cmd_cancel,
            "item_delete": self._cmd_delete,
            "item_start": self._cmd_start,
            "item_pause": self._cmd_pause,
        }

        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._server: Server | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._stopping = False
        self._bound_port: int | None = None

        # Loop-thread state.
        self._ytp_clients: dict[str, Client] = {}
        self._fa_clients: dict[str, Client] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._tick_failing = False

    # --- lifecycle (any thread) ---------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        return self._bound_port if self._bound_port is not None else self._requested_port

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stopping

    @property
    def polling(self) -> bool:
        """True while the Flasharr timers run (only while a Flasharr client is connected)."""
        ticker = self._ticker
        return ticker is not None and not ticker.done()

    def start(self) -> None:
        """Start the loop thread and listen; returns once listening. Raises OSError when the
        address cannot be bound."""
        with self._lock:
            if self._thread is not None or self._stopping:
                raise RuntimeError("the websocket server can only be started once")
            self._loop = asyncio.new_event_loop()
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._service_threads, thread_name_prefix="ws-service"
            )
            ready: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._thread = threading.Thread(
                target=self._run, args=(ready,), name=THREAD_NAME, daemon=True
            )
            self._thread.start()
        try:
            ready.result()
        except BaseException:
            self._thread.join()
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._stopping = True
            raise
        self._unsubscribe = self._bus.subscribe(self._on_event)
        log.info("websocket sidecar listening on %s:%d", self._host, self.port)

    def stop(self) -> None:
        """Close every connection and the server, stop the loop, join the thread."""
        with self._lock:
            if self._thread is None or self._stopping:
                self._stopping = True
                return
            self._stopping = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        loop, thread = self._loop, self._thread
        assert loop is not None
        if thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                future.result(timeout=self._close_timeout + 5)
            except Exception:
                log.warning("websocket sidecar did not close cleanly", exc_info=True)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=self._close_timeout + 5)
            if thread.is_alive():
                log.error("websocket sidecar thread did not stop")
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        log.info("websocket sidecar stopped")

    def client_stats(self) -> list[dict[str, Any]]:
        """A snapshot of the connected clients and their buffers (call from another thread)."""
        loop = self._loop
        if loop is None or not self.running:
            return []

        async def collect() -> list[dict[str, Any]]:
            clients = [*self._ytp_clients.values(), *self._fa_clients.values()]
            return [c.stats() for c in clients]

        return asyncio.run_coroutine_threadsafe(collect(), loop).result(timeout=10)

    # --- loop thread ----------------------------------------------------------------------

    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            try:
                self._server = loop.run_until_complete(self._listen())
            except BaseException as exc:
                ready.set_exception(exc)
                return
            ready.set_result(None)
            loop.run_forever()
        finally:
            self._cancel_leftovers(loop)
            loop.close()

    @staticmethod
    def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())

    async def _listen(self) -> Server:
        server = await serve(
            self._handle,
            self._host,
            self._requested_port,
            process_request=self._process_request,
            open_timeout=HANDSHAKE_TIMEOUT,
            create_connection=capped_connections(self._settings.current),
            ping_interval=self._ping_interval,
            ping_timeout=self._ping_timeout,
            close_timeout=self._close_timeout,
            max_size=MAX_MESSAGE,
            # Not permessage-deflate: a zlib stream per client, run for every frame sent to
            # every watcher, is CPU a small box pays to save bytes on a LAN. With 50 clients
            # and 5 fast downloads it cost 5% of the download speed here (bench/fanout.py).
            compression=None,
            logger=logging.getLogger("appliance.ws.protocol"),
        )
        self._bound_port = server.sockets[0].getsockname()[1]
        return server

    async def _shutdown(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Run a blocking service call in the server's thread pool."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, functools.partial(func, *args, **kwargs))

    # --- handshake ------------------------------------------------------------------------

    def _route(self, path: str) -> str | None:
        return self._routes.get(urlsplit(path).path)

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if self._route(request.path) is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        headers: Headers = request.headers

        def header(name: str) -> str | None:  # repeated headers joined, as WSGI does
            return ", ".join(headers.get_all(name)) or None

        remote = connection.remote_address
        refusal = self._auth.browsers.origin_refusal(header)
        if refusal is not None:
            log.warning("websocket handshake from %s refused: %s", remote, refusal)
            return connection.respond(HTTPStatus.FORBIDDEN, f"Forbidden: {refusal}\n")
        try:
            # In the pool: the check may stat the auth file or verify a scrypt hash.
            await self._call(
                self._auth.authenticate,
                address=self._auth.client_address(str(remote[0]) if remote else None,
                                                  header("X-Forwarded-For")),
                authorization=headers.get("Authorization"),
                query=urlsplit(request.path).query,
                cookie="; ".join(headers.get_all("Cookie")) or None,
                allow_ticket=True,
            )
        except errors.AppError as exc:
            status = HTTPStatus(exc.status)
            response = connection.respond(status, f"{status.phrase}\n")
            for name, value in exc.headers.items():
                response.headers[name] = value
            return response
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        request = connection.request
        assert request is not None
        if self._route(request.path) == FLASHARR:
            await self._serve_flasharr(connection)
        else:
            await self._serve_ytptube(connection)

    def _new_client(self, connection: ServerConnection, protocol: str) -> Client:
        client = Client(
            connection, protocol, max_state=self._max_state, max_progress=self._max_progress
        )
        log.info(
            "websocket client %s connected (%s) from %s",
            client.sid, protocol, connection.remote_address,
        )
        return client

    # --- bus → clients ----------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        """Bus subscriber, called in the publishing thread: hand off, never block."""
        loop = self._loop
        if loop is None or self._stopping:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us during shutdown
            loop.call_soon_threadsafe(self._dispatch, event)

    def _dispatch(self, event: Event) -> None:
        if self._ytp_clients:
            frame = encode(event.envelope())
            if frame is not None:
                key = (event.name, _item_key(event.data)) if event.progress else None
                for client in tuple(self._ytp_clients.values()):
                    client.send(frame, key)
        if self._fa_clients:
            self._dispatch_flasharr(event)

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

    # --- /ws: YTPTube ------------------------------------------------------------------------

    async def _serve_ytptube(self, connection: ServerConnection) -> None:
        client = self._new_client(connection, YTPTUBE)
        hello = encode(events.envelope("connected", {"sid": client.sid,
                                                    "timestamp": time.time()}))
        assert hello is not None
        client.send(hello)
        self._ytp_clients[client.sid] = client
        client.start()
        try:
            async for raw in connection:
                await self._handle_command(client, raw)
        except ConnectionClosed:
            pass
        finally:
            self._ytp_clients.pop(client.sid, None)
            await client.finish()
            log.info("websocket client %s disconnected (%s)", client.sid, connection.close_code)

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
            message = orjson.loads(raw)
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
        for item_id, outcome in results.items():
            if outcome != "ok":
                self._reply_error(
                    client, COMMAND_TITLES[event], f"{item_id}: {outcome}", errors.INVALID_REQUEST
                )

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

    # --- /api/ws: Flasharr ---------------------------------------------------------------------

    async def _serve_flasharr(self, connection: ServerConnection) -> None:
        client = self._new_client(connection, FLASHARR)
        # Listen before taking the snapshot: an event racing the snapshot may arrive twice
        # (harmless upsert), never zero times.
        self._fa_clients[client.sid] = client
        self._ensure_ticker()
        try:
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
            client.buffer.push_front(frame)
            client.start()
            async for _ in connection:  # the protocol has no client messages; ignore them
                pass
        except ConnectionClosed:
            pass
        finally:
            self._fa_clients.pop(client.sid, None)
            await client.finish()
            log.info("websocket client %s disconnected (%s)", client.sid, connection.close_code)

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
