"""Start and stop of the sidecar."""

from __future__ import annotations

import gc
import inspect
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
from support.ws_sidecar import (
    PAD,
    TIMEOUT,
    FakeService,
    Filler,
    backed_up,
    fill_until,
    recv_json,
    send,
    slow_connect,
    url,
    wait_until,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from appliance.config import Settings
from appliance.events import EventBus
from appliance.ws import WebsocketServer


def test_stop_closes_clients_and_ends_the_thread(
    settings: Settings, bus: EventBus, service: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="appliance.ws")
    gc.collect()  # what earlier tests left for the collector is closed before counting
    descriptors = len(os.listdir("/proc/self/fd"))
    server = WebsocketServer(settings, bus, service, port=0)
    server.start()
    assert server.port > 0
    # one sidecar per server: a second start is refused
    with pytest.raises(RuntimeError, match=r"^the websocket server can only be started once$"):
        server.start()
    threads = [t for t in threading.enumerate() if t.name == "ws-sidecar"]
    assert threads
    with connect(url(server)) as ws:
        recv_json(ws)
        server.stop()
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(timeout=TIMEOUT)
    assert exc.value.rcvd is not None
    assert (exc.value.rcvd.code, exc.value.rcvd.reason) == (1001, "service stopping")
    assert caplog.records == []  # closed cleanly, within its time
    assert not any(t.is_alive() for t in threads)
    # its loop closed too: a service that runs for years holds no descriptor of it
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == descriptors
    assert not [t for t in threading.enumerate() if t.name == "ws-sidecar"]
    server.stop()  # idempotent
    bus.publish("after_stop", {})  # no subscriber left to fail
    assert server.client_stats() == []


def test_start_raises_oserror_when_the_port_is_taken(
    settings: Settings, bus: EventBus, service: FakeService
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = WebsocketServer(settings, bus, service, port=taken.getsockname()[1])
        with pytest.raises(OSError):
            server.start()
        server.stop()
    assert not [t for t in threading.enumerate() if t.name == "ws-sidecar"]


def test_it_listens_only_on_the_configured_address(
    make_server: Callable[..., WebsocketServer], settings: Settings
) -> None:
    # 127.0.0.2 is loopback too (all of 127/8 is, on Linux): a second address to miss.
    server = make_server(settings.replace(host="127.0.0.2"))
    with connect(f"ws://127.0.0.2:{server.port}/ws") as ws:
        assert recv_json(ws)["event"] == "connected"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT).close()


def test_a_server_stopped_before_it_started_never_starts(
    settings: Settings, bus: EventBus, service: FakeService
) -> None:
    # A service that began to stop while starting must not bring the sidecar up after it.
    server = WebsocketServer(settings, bus, service, port=0)
    server.stop()
    with pytest.raises(RuntimeError):
        server.start()
    assert not server.running


def test_a_restarted_sidecar_takes_its_port_again_and_clients_reconnect(
    settings: Settings, bus: EventBus, service: FakeService
) -> None:
    # A worker's restart: the old sidecar closed its clients (their sockets linger in
    # TIME_WAIT on its port), the new one binds the same port and they come back.
    first = WebsocketServer(settings, bus, service, port=0)
    first.start()
    port = first.port
    with connect(url(first)) as ws:
        recv_json(ws)
        first.stop()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=TIMEOUT)
    second = WebsocketServer(settings, bus, service, port=port)
    second.start()
    try:
        with connect(url(second)) as ws:
            assert recv_json(ws)["event"] == "connected"
            bus.publish("marker", {})
            assert recv_json(ws) == {"event": "marker", "data": {}}
    finally:
        second.stop()


def test_a_service_call_that_hangs_does_not_hold_the_stop(
    settings: Settings, bus: EventBus, service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The service stops (a restart, systemd's stop) while a delete hangs on its disk: the
    # sidecar's stop returns, and the call is left to end on its own.
    released = threading.Event()
    hung = threading.Event()

    def delete(ids: list[str], remove_file: bool = False) -> dict[str, str]:
        hung.set()
        released.wait(timeout=30)
        return dict.fromkeys(ids, "ok")

    monkeypatch.setattr(service, "delete", delete)
    server = WebsocketServer(settings, bus, service, port=0, close_timeout=0.5)
    server.start()
    stopping = threading.Thread(target=server.stop)
    try:
        with connect(url(server)) as ws:
            recv_json(ws)
            send(ws, "item_delete", {"id": "on-a-hung-disk"})
            assert hung.wait(timeout=TIMEOUT)
            stopping.start()
            stopping.join(timeout=TIMEOUT)
            assert not stopping.is_alive()
            assert not server.running
    finally:
        released.set()
        if stopping.ident is not None:
            stopping.join(timeout=TIMEOUT)


def test_a_client_that_stopped_reading_does_not_hold_the_stop(
    make_server: Callable[..., WebsocketServer], bus: EventBus,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # websockets' close waits for the socket's write buffer to drain before its close timeout
    # begins: one client that stopped reading (a Home Assistant that hangs) held every stop,
    # and restart, for the whole of stop()'s wait, which then logged "did not close cleanly"
    # with a traceback. Each client's close is cut after the close timeout now.
    server = make_server()
    with slow_connect(server) as slow, connect(url(server), max_queue=None) as fast:
        sid = recv_json(slow)["data"]["sid"]
        recv_json(fast)
        fill_until(fast, Filler(lambda n: bus.publish("filler", {"n": n, "pad": PAD}),
                                lambda m: m["data"]["n"] if m["event"] == "filler" else None),
                   lambda: backed_up(server, sid))
        with caplog.at_level(logging.WARNING, logger="appliance.ws"):
            server.stop()
        assert [r.getMessage() for r in caplog.records] == []
        assert not server.running
        # the reader was told why
        _, closed = recv_until_closed(fast)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1001, "service stopping")


def recv_until_closed(ws: ClientConnection) -> tuple[list[Any], ConnectionClosed]:
    got = []
    with pytest.raises(ConnectionClosed) as exc:
        while True:
            got.append(recv_json(ws))
    return got, exc.value


def test_it_listens_on_the_settings_port_unless_given_another(
    settings: Settings, bus: EventBus, service: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    # The service gives no port: the sidecar listens on YTP_WS_PORT (or the HTTP port + 1).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    server = WebsocketServer(settings.replace(ws_port=free), bus, service)
    assert server.port == free  # before it starts: the one it will ask for
    with caplog.at_level(logging.INFO, logger="appliance.ws"):
        server.start()
    try:
        assert server.port == free
        # websockets' own lines under the sidecar's logger (the service's log settings hold)
        assert [(r.name, r.getMessage()) for r in caplog.records] == [
            ("appliance.ws.protocol", f"server listening on 127.0.0.1:{free}"),
            ("appliance.ws", f"websocket sidecar listening on 127.0.0.1:{free}")]
        with connect(f"ws://127.0.0.1:{free}/ws") as ws:
            assert recv_json(ws)["event"] == "connected"
    finally:
        server.stop()


def test_flasharrs_timers_default_to_the_contracts_intervals() -> None:
    # spec/flasharr-api.md: TASK_BATCH_UPDATE every 500 ms, ENGINE_STATS every 2 seconds
    defaults = inspect.signature(WebsocketServer).parameters
    assert (defaults["batch_interval"].default, defaults["stats_interval"].default) == (0.5, 2.0)


def test_a_stop_while_a_command_runs_leaves_no_thread_or_descriptor_behind(
    settings: Settings, bus: EventBus, service: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    # A command still waiting on the service (a delete on a disk that hangs) at the stop: its
    # handler is cancelled with the loop's other leftovers, the loop closed, the pools' threads
    # end once their calls return. A restart of the sidecar must leave nothing of the old one.
    began, release = threading.Event(), threading.Event()

    def start(ids: list[str]) -> dict[str, str]:
        began.set()
        release.wait(TIMEOUT)
        return dict.fromkeys(ids, "ok")

    service.start = start  # type: ignore[method-assign]
    gc.collect()
    descriptors = len(os.listdir("/proc/self/fd"))
    server = WebsocketServer(settings, bus, service, port=0)
    server.start()
    try:
        with connect(url(server)) as ws:
            recv_json(ws)
            send(ws, "item_start", "a")
            assert began.wait(TIMEOUT)
            server.stop()
    finally:
        release.set()
        server.stop()
    names = ("ws-sidecar", "ws-service", "ws-auth")
    wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith(names)])
    with caplog.at_level(logging.ERROR):
        gc.collect()
    assert len(os.listdir("/proc/self/fd")) == descriptors
    # its handler was cancelled and awaited, not dropped pending with the loop
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
