"""Who may open a socket: Basic credentials or an apikey, else 401 at the handshake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support.ws_sidecar import apikey, basic, recv_json, refusal, url
from websockets.sync.client import connect

from appliance.auth import Authenticator
from appliance.config import Settings
from appliance.errors import AppError
from appliance.ws import WebsocketServer


@pytest.fixture
def auth_server(
    make_server: Callable[..., WebsocketServer], guarded: Settings
) -> WebsocketServer:
    return make_server(guarded)


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/ws", None),
        ("/ws", basic("alice", "wrong")),
        ("/ws", basic("mallory", "s3cr:et")),
        ("/ws", {"Authorization": "Basic !!!not-base64"}),
        ("/ws", {"Authorization": "Bearer s3cr:et"}),
        (f"/ws?apikey={apikey('alice', 'nope')}", None),
        ("/ws?apikey=%%%", None),
        ("/api/ws", None),
    ],
)
def test_handshake_without_good_credentials_is_401(
    auth_server: WebsocketServer, path: str, headers: dict[str, str] | None
) -> None:
    response = refusal(url(auth_server, path), additional_headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_basic_header_is_accepted(auth_server: WebsocketServer) -> None:
    with connect(url(auth_server), additional_headers=basic("alice", "s3cr:et")) as ws:
        assert recv_json(ws)["event"] == "connected"


@pytest.mark.parametrize("strip_padding", [False, True])
def test_apikey_is_accepted(auth_server: WebsocketServer, strip_padding: bool) -> None:
    key = apikey("alice", "s3cr:et")
    key = key.rstrip("=") if strip_padding else key
    with connect(url(auth_server, f"/ws?apikey={key}")) as ws:
        assert recv_json(ws)["event"] == "connected"
    with connect(url(auth_server, f"/api/ws?apikey={key}")) as ws:
        assert recv_json(ws)["type"] == "SYNC_ALL"


def test_authenticator_is_open_when_auth_is_off(settings: Settings) -> None:
    def ok(auth: Authenticator, **request: Any) -> bool:
        try:
            auth.authenticate(address="127.0.0.1", **request)
        except AppError as exc:
            assert exc.status == 401
            return False
        return True

    assert ok(Authenticator(settings))
    guarded = Authenticator(settings.replace(auth_username="u", auth_password="p"))
    assert not ok(guarded)
    assert ok(guarded, query={"apikey": apikey("u", "p")})
    assert ok(guarded, query={"apikey": ["junk", apikey("u", "p")]})
    assert not ok(guarded, authorization="Basic dTpx")  # u:q
