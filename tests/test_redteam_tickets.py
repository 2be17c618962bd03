"""A red team's try at the tickets: a new password or token is what a person sets when a
login or a token was stolen, and a ticket minted with the old ones opened its file for three
hours after it (a websocket ticket for its minute): on the real service, the change made by
``appliance web passwd`` / ``web gentoken`` on the config folder while it runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from support.server import Server, wait_for
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from appliance.auth import gen_token, set_password, show_token

pytestmark = pytest.mark.e2e

USER, OLD, NEW = "appliance", "the first password", "the second password"


def started(make_server: Callable[..., Server], tmp_path: Path) -> tuple[Server, Path]:
    config = tmp_path / "server" / "config"
    config.mkdir(parents=True)
    set_password(config, OLD)
    server = make_server()
    (server.download_path / "clip.mp4").write_bytes(b"\0" * 4096)
    return server, config


def tickets(server: Server, auth: tuple[str, str] | None = None,
            headers: dict[str, str] | None = None) -> tuple[str, str]:
    """A file ticket's URL for clip.mp4 and a websocket ticket, minted with these
    credentials; the file ticket opens its file."""
    file = server.post("/api/auth/file-ticket", {"path": "clip.mp4"}, auth=auth,
                       headers=dict(headers or {}))
    ws = server.post("/api/auth/ws-ticket", auth=auth, headers=dict(headers or {}))
    assert file.status_code == ws.status_code == 200, (file.text, ws.text)
    url = server.url + file.json()["url"]
    assert requests.get(url, timeout=30).content == b"\0" * 4096
    return url, ws.json()["ticket"]


def assert_ended(server: Server, url: str, ws_ticket: str) -> None:
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "The ticket is unknown, already used or expired."
    with pytest.raises(InvalidStatus) as refused, connect(f"{server.ws_url}?ticket={ws_ticket}",
                                                          open_timeout=10):
        pass
    assert refused.value.response.status_code == 401


def test_a_new_password_ends_the_tickets_minted_before(
        make_server: Callable[..., Server], tmp_path: Path) -> None:
    server, config = started(make_server, tmp_path)
    url, ws_ticket = tickets(server, auth=(USER, OLD))
    set_password(config, NEW)
    wait_for(lambda: server.get("/api/history", auth=(USER, NEW)).status_code == 200,
             timeout=30, message="the new password taken")
    assert_ended(server, url, ws_ticket)
    tickets(server, auth=(USER, NEW))  # minted with the new one: they open as ever


def test_a_new_token_ends_the_tickets_minted_before(
        make_server: Callable[..., Server], tmp_path: Path) -> None:
    server, config = started(make_server, tmp_path)
    token = show_token(config)
    wait_for(lambda: server.get("/api/history", headers={"Authorization": f"Token {token}"}
                                ).status_code == 200, timeout=30, message="the token taken")
    url, ws_ticket = tickets(server, headers={"Authorization": f"Token {token}"})
    gen_token(config)
    wait_for(lambda: server.get("/api/history", headers={"Authorization": f"Token {token}"}
                                ).status_code == 401, timeout=30, message="the old token ended")
    assert_ended(server, url, ws_ticket)
