"""The websocket sidecar: an asyncio ``websockets`` server in one daemon thread.

Two protocols on the same event bus:

- ``/ws`` (and ``{base_path}ws``): YTPTube's frames, ``{"event", "data"}`` from the client
  and ``{"event", "data": Event}`` to it, Event being ``{id, created_at, event, title,
  message, data: payload}`` (:func:`appliance.events.envelope`) for every event.
- ``/api/ws`` (and ``{base_path}api/ws``): Flasharr's ``{"type": ...}`` messages, server to
  client only (``SYNC_ALL``, ``TASK_ADDED``, ``TASK_UPDATED``, ``TASK_REMOVED``,
  ``TASK_BATCH_UPDATE``, ``ENGINE_STATS``).

Each protocol's half lives in its own module (:mod:`appliance.ws.ytptube`,
:mod:`appliance.ws.flasharr`); this one owns the thread, the loop, the handshake and the
routing of bus events to clients.

The handshake refuses pages on foreign origins (403, see :mod:`appliance.auth.browsers`),
then authenticates like HTTP.

Threading: the bus calls :meth:`WebsocketServer._on_event` in engine threads; it only hands
the event to the loop: appended to a queue that the loop drains (at most ``DRAIN_BATCH`` a
turn, so that the senders write between), woken (``call_soon_threadsafe``) only when the queue
was empty, and not at all while no client is connected. A wake-up is a
write to the loop's pipe and a turn of the loop's thread at the interpreter's lock, which the
API's threads wait for: a round of 500 tasks and their downloads published some 10,000 events
(``bench/tasks_scale.py``). On the loop each event is encoded once
and queued into every client's own bounded buffer (see :mod:`appliance.ws.clients`), from
which that client's sender task writes. Blocking service calls (client commands, the Flasharr
snapshots) run in a small thread pool owned by the server, never on the loop; credential
checks in another, so that service calls that hang hold neither.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import functools
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from typing import Any, Protocol, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from appliance import errors
from appliance.auth import Authenticator
from appliance.config import Settings, SettingsHolder
from appliance.events import Event, EventBus
from appliance.ws import admission
from appliance.ws.admission import Admission
from appliance.ws.budget import Budget
from appliance.ws.clients import CLOSE_GOING_AWAY, CLOSE_POLICY, Client
from appliance.ws.flasharr import FLASHARR, FlasharrProtocol
from appliance.ws.frames import encode
from appliance.ws.limits import HANDSHAKE_TIMEOUT, capped_connections, default_total
from appliance.ws.ytptube import YTPTUBE, YtptubeProtocol

log = logging.getLogger("appliance.ws")

T = TypeVar("T")

THREAD_NAME = "ws-sidecar"
MAX_MESSAGE = 2**20  # client → server messages over 1 MiB are refused (close 1009)
# Events dispatched in one turn of the loop; the rest in the next, after the senders have
# written. A burst dispatched whole (a playlist of thousands added at once, published faster
# than the loop turns while a thousand clients are connected) queued all of it before any
# sender wrote a frame: a client that reads everything it gets was closed as too slow
# (10,000 state frames waiting for it).
DRAIN_BATCH = 100
# Threads that check credentials (handshakes, open sockets after a change): their own, so that
# service calls that hang (a delete on a disk that hangs) hold neither new sockets nor the
# closing of those whose credentials ended. Hashing is bounded by the checker's slots.
AUTH_THREADS = 2


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


def _item_key(data: Any) -> Any:
    return data.get("id") if isinstance(data, dict) else None


def _target(path: str) -> tuple[str, str]:
    """A handshake's request target as (path, query). Split at its first ``?``, not read as
    a URL: ``urlsplit`` takes a target that starts with ``//`` for a host (``//[/ws`` raised,
    a stranger's 500 and a traceback in the log; ``//evil/ws`` was ``/ws``)."""
    route, _, query = path.partition("?")
    return route, query


# --- the server -------------------------------------------------------------------------


class WebsocketServer(YtptubeProtocol, FlasharrProtocol):
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
        auth_check_interval: float = 2.0,
        max_connections: int | None = None,
        backlog_budget: int | None = None,
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
        self._auth_check_interval = auth_check_interval
        self._max_connections = default_total() if max_connections is None else max_connections
        # What all clients together may have waiting (see ws/budget.py), fixed at start.
        self.budget = Budget(settings.ws_backlog_budget if backlog_budget is None
                             else backlog_budget)

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
        self._auth_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._server: Server | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._stopping = False
        self._bound_port: int | None = None

        # Events handed over, not yet dispatched; a drain is scheduled while it is not empty.
        self._pending: collections.deque[Event] = collections.deque()
        self._pending_lock = threading.Lock()

        # Loop-thread state (the publishing threads only look whether the dicts are empty).
        self._ytp_clients: dict[str, Client] = {}
        self._fa_clients: dict[str, Client] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._tick_failing = False
        # What each connection was let in with: by connection from the handshake until it
        # becomes a client, then by the client's sid while it lasts (see ws/admission.py).
        self._handshakes: weakref.WeakKeyDictionary[ServerConnection, Admission] = (
            weakref.WeakKeyDictionary())
        self._admitted: dict[str, Admission] = {}
        self._guard: asyncio.Task[None] | None = None

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
            self._auth_executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=AUTH_THREADS, thread_name_prefix="ws-auth"
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
            self._shutdown_pools()
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
        self._shutdown_pools()
        log.info("websocket sidecar stopped")

    def _shutdown_pools(self) -> None:
        for pool in (self._executor, self._auth_executor):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

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
            create_connection=capped_connections(self._settings.current, self._max_connections),
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
        for task in (self._ticker, self._guard):
            if task is not None:
                task.cancel()
        # Each client closed by its own bounded close: websockets' own waits for a socket's
        # write buffer to drain, so one client that stopped reading held every stop (and
        # restart) for the whole wait of stop(), which then logged a traceback.
        for client in (*self._ytp_clients.values(), *self._fa_clients.values()):
            client.close(CLOSE_GOING_AWAY, "service stopping")
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Run a blocking service call in the server's thread pool."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, functools.partial(func, *args, **kwargs))

    def _check(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Run a credential check in the threads of its own (see AUTH_THREADS)."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._auth_executor,
                                    functools.partial(func, *args, **kwargs))

    # --- handshake ------------------------------------------------------------------------

    def _route(self, path: str) -> str | None:
        return self._routes.get(_target(path)[0])

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
            # In a thread: the check may stat the auth file or verify a scrypt hash.
            self._handshakes[connection] = await self._check(
                self._admit,
                address=self._auth.client_address(str(remote[0]) if remote else None,
                                                  header("X-Forwarded-For")),
                # Joined, not headers.get: that raises on a repeated header (a stranger's
                # 500 and a traceback in the log); joined, it is refused as on HTTP.
                authorization=header("Authorization"),
                query=_target(request.path)[1],
                cookie="; ".join(headers.get_all("Cookie")) or None,
                host=header("Host"),
            )
        except errors.AppError as exc:
            status = HTTPStatus(exc.status)
            response = connection.respond(status, f"{status.phrase}: {exc.message}\n")
            for name, value in exc.headers.items():
                response.headers[name] = value
            return response
        return None

    def _admit(self, *, address: str, authorization: str | None, query: str,
               cookie: str | None, host: str | None) -> Admission:
        """(Pool thread.) Authenticate a handshake; what it was let in with, or AppError."""
        self._auth.check_host(host)
        # Read before asking: a change while it is asked is then seen by the next check.
        under = admission.credentials(self._auth, self._settings.current)
        identity = self._auth.authenticate(address=address, authorization=authorization,
                                           query=query, cookie=cookie, allow_ticket=True)
        return Admission(under, address, authorization, query, cookie, identity.session_id,
                         checked=identity.checked_what_it_presented)

    async def _handle(self, connection: ServerConnection) -> None:
        request = connection.request
        assert request is not None
        if self._route(request.path) == FLASHARR:
            await self._serve_flasharr(connection)
        else:
            await self._serve_ytptube(connection)

    @contextlib.asynccontextmanager
    async def _connected(self, connection: ServerConnection, protocol: str,
                         clients: dict[str, Client]) -> AsyncIterator[Client]:
        """A client for ``connection`` while it lasts. The protocol registers it in
        ``clients`` when its first frames are queued; on the way out (the peer gone, or the
        protocol done) it is removed, its buffer drained, and the disconnect logged."""
        client = Client(connection, protocol, max_state=self._max_state,
                        max_progress=self._max_progress, budget=self.budget)
        log.info(
            "websocket client %s connected (%s) from %s",
            client.sid, protocol, connection.remote_address,
        )
        let_in = self._handshakes.pop(connection, None)
        if let_in is not None:
            self._admitted[client.sid] = let_in
            self._ensure_guard()
        try:
            yield client
        except ConnectionClosed:
            pass
        finally:
            clients.pop(client.sid, None)
            self._admitted.pop(client.sid, None)
            await client.finish()
            log.info("websocket client %s disconnected (%s)", client.sid, connection.close_code)

    # --- credentials that change under open sockets ------------------------------------------

    def _ensure_guard(self) -> None:
        if self._guard is None or self._guard.done():
            self._guard = asyncio.get_running_loop().create_task(
                self._guard_loop(), name="ws-auth-guard"
            )

    async def _guard_loop(self) -> None:
        """Close the connections the credentials no longer let in (see ws/admission.py);
        ends when no connection is left to watch."""
        while self._admitted:
            await asyncio.sleep(self._auth_check_interval)
            try:
                verdicts = await self._check(admission.recheck, self._auth,
                                            self._settings.current, tuple(self._admitted.items()))
            except Exception:
                log.exception("websocket credential check failed")
                continue
            for sid, verdict in verdicts:
                if sid not in self._admitted:
                    continue  # gone meanwhile
                if verdict is not None:
                    self._admitted[sid] = verdict
                    continue
                client = self._ytp_clients.get(sid) or self._fa_clients.get(sid)
                if client is None:
                    continue  # not serving yet: asked again at the next check
                log.info("websocket client %s closed: its credentials are no longer accepted",
                         sid)
                self._admitted.pop(sid, None)
                client.close(CLOSE_POLICY, "credentials no longer accepted")

    # --- bus → clients ----------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        """Bus subscriber, called in the publishing thread: hand off, never block."""
        loop = self._loop
        if loop is None or self._stopping or not (self._ytp_clients or self._fa_clients):
            return  # a client that connects later gets the state as it is then
        with self._pending_lock:
            self._pending.append(event)
            if len(self._pending) > 1:
                return  # a drain is scheduled already
        with contextlib.suppress(RuntimeError):  # the loop closed under us during shutdown
            loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._pending_lock:
            count = min(DRAIN_BATCH, len(self._pending))
            pending = [self._pending.popleft() for _ in range(count)]
            more = bool(self._pending)
        for event in pending:
            self._dispatch(event)
        if more:  # the rest after the senders' turn (still scheduled: the deque is not empty)
            asyncio.get_running_loop().call_soon(self._drain)

    def _dispatch(self, event: Event) -> None:
        if self._ytp_clients:
            frame = encode(event.envelope())
            if frame is not None:
                key = (event.name, _item_key(event.data)) if event.progress else None
                for client in tuple(self._ytp_clients.values()):
                    client.send(frame, key)
        if self._fa_clients:
            self._dispatch_flasharr(event)
