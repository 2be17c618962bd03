"""Fixtures of the websocket sidecar's tests: a real server on 127.0.0.1, port 0, in front
of the stand-in service of ``support.ws_sidecar``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.ws_sidecar import FakeService

from appliance.config import Settings, load_settings
from appliance.events import EventBus
from appliance.ws import WebsocketServer


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return load_settings(environ={"YTP_CONFIG_PATH": str(tmp_path), "YTP_HOST": "127.0.0.1"})


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def service(bus: EventBus) -> FakeService:
    return FakeService(bus)


@pytest.fixture
def make_server(
    settings: Settings, bus: EventBus, service: FakeService
) -> Iterator[Callable[..., WebsocketServer]]:
    # Stopped in reverse order when the test ends, each at most once.
    with contextlib.ExitStack() as running:

        def make(custom: Settings | None = None, **kwargs: Any) -> WebsocketServer:
            server = WebsocketServer(custom or settings, bus, service, port=0, **kwargs)
            server.start()
            running.callback(server.stop)
            return server

        yield make


@pytest.fixture
def guarded(settings: Settings) -> Settings:
    """Settings with authentication on: alice / s3cr:et."""
    return settings.replace(auth_username="alice", auth_password="s3cr:et")
