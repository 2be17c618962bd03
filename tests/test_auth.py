"""Authentication: YTP Basic/apikey, FlexGet's passwd/token/cookie login, websocket tickets,
throttling — through falcon.testing on the real Runtime and through the real gunicorn server
with a real websocket client."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import requests
from conftest import make_settings, started
from support.server import Server
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import appliance.auth
from appliance.api.app import create_app
from appliance.api.auth import OPEN_PATHS, is_open
from appliance.auth import COOKIE_NAME, Authenticator, sessions
from appliance.auth.passwords import hash_password, verify_password
from appliance.auth.throttle import Throttle
from appliance.cli import main

USER, PASSWORD = "alice", "s3cr:et-pw"
WEB_PASSWORD = "correct horse battery"
PROTECTED = "/api/history/live"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def apikey(user: str, password: str) -> str:
    return base64.urlsafe_b64encode(f"{user}:{password}".encode()).decode()


class App:
    """The real Runtime (no websocket) behind falcon.testing, with a settable clock."""

    def __init__(self, root: Path, **env: str) -> None:
        self.runtime = started(make_settings(root, **env))
        self.client = falcon.testing.TestClient(create_app(self.runtime))
        self.offset = 0.0
        self.auth: Authenticator = self.runtime.auth
        self.auth.clock = lambda: time.time() + self.offset
        self.config_path = self.runtime.settings.config_path

    def get(self, path: str = PROTECTED, **kwargs: Any) -> falcon.testing.Result:
        return self.client.simulate_get(path, **kwargs)

    def login(self, username: str, password: str, remember: bool = False,
              path: str = "/api/auth/login", **kwargs: Any) -> falcon.testing.Result:
        query = "remember=true" if remember else None
        return self.client.simulate_post(
            path, json={"username": username, "password": password}, query_string=query,
            **kwargs,
        )

    def cookie_get(self, value: str, path: str = PROTECTED) -> falcon.testing.Result:
        return self.get(path, headers={"Cookie": f"{COOKIE_NAME}={value}"})


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def make(name: str = "app", **env: str) -> App:
        app = App(tmp_path / name, **env)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.runtime.stop()


@pytest.fixture
def env_app(make_app: Callable[..., App]) -> App:
    return make_app(YTP_AUTH_USERNAME=USER, YTP_AUTH_PASSWORD=PASSWORD)


@pytest.fixture
def web_app(make_app: Callable[..., App]) -> App:
    app = make_app()
    appliance.auth.set_password(app.config_path, WEB_PASSWORD)
    return app


def cli(config_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("YTP_CONFIG_PATH", str(config_path))
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def assert_401(result: Any) -> None:
    status = getattr(result, "status_code", None)
    assert status == 401, (status, getattr(result, "text", ""))
    assert result.headers["WWW-Authenticate"].startswith('Basic realm="appliance"')
    body = result.json if isinstance(result, falcon.testing.Result) else result.json()
    assert body["code"] == "UNAUTHORIZED" and body["error"]


# --- open or closed ---------------------------------------------------------------------------


def test_unconfigured_api_is_open_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="appliance.runtime"):
        runtime = started(make_settings(tmp_path / "open"))
    try:
        warnings = [r for r in caplog.records if "no credentials are set" in r.getMessage()]
        assert len(warnings) == 1 and "web passwd" in warnings[0].getMessage()
        client = falcon.testing.TestClient(create_app(runtime))
        assert client.simulate_get(PROTECTED).status_code == 200
        assert client.simulate_post("/api/auth/ws-ticket").status_code == 200
        refused = client.simulate_post("/api/auth/login",
                                       json={"username": "appliance", "password": "whatever1"})
        assert refused.status_code == 400 and "open" in refused.json["error"]
    finally:
        runtime.stop()
    caplog.clear()
    appliance.auth.set_password(tmp_path / "open" / "config", WEB_PASSWORD)
    with caplog.at_level(logging.WARNING, logger="appliance.runtime"):
        runtime = started(make_settings(tmp_path / "open"))
    runtime.stop()
    assert not [r for r in caplog.records if "no credentials are set" in r.getMessage()]


def test_a_password_set_while_running_closes_the_api_at_once(make_app: Callable[..., App]) -> None:
    app = make_app()
    assert app.get().status_code == 200
    appliance.auth.set_password(app.config_path, WEB_PASSWORD)
    assert_401(app.get())
    assert app.get(headers=basic("appliance", WEB_PASSWORD)).status_code == 200


def test_open_paths_and_preflight_need_no_credentials(env_app: App) -> None:
    expected = {"/api/ping", "/api/health", "/api/auth/login", "/api", "/api/openapi.json"}
    assert expected <= OPEN_PATHS
    assert is_open("/api/docs/assets/swagger-ui.css")
    assert not is_open("/api/docs") and not is_open("/api/pingx") and not is_open("/")
    assert env_app.get("/api/ping").json == {"status": "pong"}
    assert env_app.get("/api/health").status_code == 200
    assert env_app.get("/api/health/").status_code == 200  # trailing slash stripped
    for path in ("/api/", "/api/openapi.json"):
        assert env_app.get(path).status_code != 401
    preflight = env_app.client.simulate_options(PROTECTED, headers={
        "Origin": "http://elsewhere.example", "Access-Control-Request-Method": "GET"})
    assert preflight.status_code != 401
    assert_401(env_app.get("/api/system/configuration"))
    assert_401(env_app.client.simulate_post("/api/history", json={"url": "http://x/y"}))


def test_unknown_route_is_401_for_strangers_and_404_for_users(env_app: App) -> None:
    assert_401(env_app.get("/api/no/such/thing"))
    found = env_app.get("/api/no/such/thing", headers=basic(USER, PASSWORD))
    assert found.status_code == 404 and found.json["code"] == "NOT_FOUND"


# --- YTP_AUTH_USERNAME / YTP_AUTH_PASSWORD ------------------------------------------------------


def test_basic_ok_wrong_and_missing(env_app: App) -> None:
    assert env_app.get(headers=basic(USER, PASSWORD)).status_code == 200
    assert_401(env_app.get())
    assert_401(env_app.get(headers=basic(USER, "wrong")))
    assert_401(env_app.get(headers=basic("mallory", PASSWORD)))
    assert_401(env_app.get(headers={"Authorization": "Basic !!!not base64"}))
    assert_401(env_app.get(headers={"Authorization": f"Bearer {PASSWORD}"}))


@pytest.mark.parametrize("padded", [True, False])
def test_apikey_ok_and_wrong(env_app: App, padded: bool) -> None:
    key = apikey(USER, PASSWORD)
    assert key.endswith("=")  # the padding case is real
    key = key if padded else key.rstrip("=")
    assert env_app.get(params={"apikey": key}).status_code == 200
    assert_401(env_app.get(params={"apikey": apikey(USER, "nope")}))
    assert_401(env_app.get(params={"apikey": "%%%"}))


# --- FlexGet: web passwd, tokens, cookie login ----------------------------------------------------


def test_passwd_stores_only_a_salted_hash_in_a_private_file(
    make_app: Callable[..., App], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = make_app()
    code, _, err = cli(app.config_path, monkeypatch, capsys, "web", "passwd", "short")
    assert code == 2 and "at least 8 characters" in err
    assert not (app.config_path / "auth.json").exists()
    code, out, _ = cli(app.config_path, monkeypatch, capsys, "web", "passwd", WEB_PASSWORD)
    assert code == 0 and "appliance" in out
    path = app.config_path / "auth.json"
    raw = path.read_text()
    assert WEB_PASSWORD not in raw
    data = json.loads(raw)
    assert data["password"].startswith("scrypt$16384$8$1$")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    # Same password again: a new salt, so a new hash.
    cli(app.config_path, monkeypatch, capsys, "web", "passwd", WEB_PASSWORD)
    assert json.loads(path.read_text())["password"] != data["password"]


def test_password_hashes_verify_and_refuse() -> None:
    encoded = hash_password("a long password")
    assert verify_password("a long password", encoded)
    assert not verify_password("a long passwore", encoded)
    for junk in ("", "scrypt$1$2$3", "plain$16384$8$1$AAAA$AAAA", "scrypt$3$8$1$AAAA$AAAA",
                 "scrypt$16384$8$1$!!$!!"):
        assert not verify_password("a long password", junk)


def test_token_works_and_gentoken_rotates_without_restart(
    web_app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, token, _ = cli(web_app.config_path, monkeypatch, capsys, "web", "showtoken")
    assert code == 0 and len(token) >= 40
    assert cli(web_app.config_path, monkeypatch, capsys, "web", "showtoken")[1] == token
    assert web_app.get(headers={"Authorization": f"Token {token}"}).status_code == 200
    assert_401(web_app.get(headers={"Authorization": f"Token {token}x"}))
    code, new, _ = cli(web_app.config_path, monkeypatch, capsys, "web", "gentoken")
    assert code == 0 and new != token
    assert_401(web_app.get(headers={"Authorization": f"Token {token}"}))
    assert web_app.get(headers={"Authorization": f"Token {new}"}).status_code == 200


def test_web_password_works_by_basic_and_apikey(web_app: App) -> None:
    assert web_app.get(headers=basic("appliance", WEB_PASSWORD)).status_code == 200
    assert web_app.get(params={"apikey": apikey("appliance", WEB_PASSWORD)}).status_code == 200
    assert_401(web_app.get(headers=basic("appliance", WEB_PASSWORD + "x")))
    assert_401(web_app.get(headers=basic("flexget", WEB_PASSWORD)))


def test_login_sets_a_browser_session_cookie_that_authenticates(web_app: App) -> None:
    assert_401(web_app.login("appliance", "wrong password"))
    result = web_app.login("appliance", WEB_PASSWORD, path="/api/auth/login/")
    assert result.status_code == 200, result.text
    assert result.json["status"] == "success"
    cookie = result.cookies[COOKIE_NAME]
    assert cookie.http_only and cookie.same_site == "Strict" and cookie.path == "/"
    assert cookie.max_age is None and cookie.expires is None  # browser session
    header = result.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Max-Age" not in header
    assert PASSWORD not in cookie.value and WEB_PASSWORD not in cookie.value
    assert web_app.cookie_get(cookie.value).status_code == 200


def test_remember_sets_a_persistent_cookie(web_app: App) -> None:
    result = web_app.login("appliance", WEB_PASSWORD, remember=True)
    assert result.status_code == 200
    cookie = result.cookies[COOKIE_NAME]
    assert cookie.max_age == sessions.REMEMBER_SECONDS
    assert f"Max-Age={sessions.REMEMBER_SECONDS}" in result.headers["set-cookie"]
    assert cookie.http_only and cookie.same_site == "Strict"
    web_app.offset = 2 * 24 * 3600  # past a browser session's day, within 30 days
    assert web_app.cookie_get(cookie.value).status_code == 200
    web_app.offset = sessions.REMEMBER_SECONDS + 60
    assert_401(web_app.cookie_get(cookie.value))


def test_login_takes_either_credential_source(make_app: Callable[..., App]) -> None:
    app = make_app(YTP_AUTH_USERNAME=USER, YTP_AUTH_PASSWORD=PASSWORD)
    assert app.login(USER, PASSWORD).status_code == 200
    assert_401(app.login("appliance", PASSWORD))
    appliance.auth.set_password(app.config_path, WEB_PASSWORD)
    assert app.login("appliance", WEB_PASSWORD).status_code == 200
    assert app.login(USER, WEB_PASSWORD).status_code == 200  # the YTP user, the web password
    assert app.login(USER, PASSWORD).status_code == 200
    bad = app.client.simulate_post("/api/auth/login", json={"username": USER})
    assert bad.status_code == 400 and bad.json["code"] == "INVALID_REQUEST"


def test_tampered_and_forged_cookies_are_refused(web_app: App) -> None:
    value = web_app.login("appliance", WEB_PASSWORD).cookies[COOKIE_NAME].value
    version, sid, expires, mac = value.split(".")
    later = str(int(expires) + 3600)
    for tampered in (
        f"{version}.{sid}.{later}.{mac}",                       # longer life, same MAC
        f"{version}.{sid[:-1]}{'A' if sid[-1] != 'A' else 'B'}.{expires}.{mac}",
        f"{version}.{sid}.{expires}.{mac[:-2]}",
        sessions.sign("0" * 64, sid, int(expires)),             # signed with another key
        "garbage",
    ):
        assert_401(web_app.cookie_get(tampered))
    assert web_app.cookie_get(value).status_code == 200


def test_expired_cookie_is_refused(web_app: App) -> None:
    value = web_app.login("appliance", WEB_PASSWORD).cookies[COOKIE_NAME].value
    web_app.offset = sessions.BROWSER_SECONDS - 60
    assert web_app.cookie_get(value).status_code == 200
    web_app.offset = sessions.BROWSER_SECONDS + 1
    result = web_app.cookie_get(value)
    assert_401(result)
    assert "log in again" in result.json["error"]


def test_logout_ends_the_session(web_app: App) -> None:
    first = web_app.login("appliance", WEB_PASSWORD).cookies[COOKIE_NAME].value
    second = web_app.login("appliance", WEB_PASSWORD).cookies[COOKIE_NAME].value
    out = web_app.client.simulate_post("/api/auth/logout",
                                       headers={"Cookie": f"{COOKIE_NAME}={first}"})
    assert out.status_code == 200
    cleared = out.cookies[COOKIE_NAME]
    assert cleared.value == ""
    assert cleared.expires is not None and cleared.expires.timestamp() <= time.time() + 1
    assert_401(web_app.cookie_get(first))
    assert web_app.cookie_get(second).status_code == 200  # only that session ended
    # The session table is in the auth file: a restarted service still refuses it.
    restarted = Authenticator(web_app.runtime.settings)
    with pytest.raises(appliance.errors.AppError):
        restarted.authenticate(address="x", cookie=f"{COOKIE_NAME}={first}")
    assert restarted.authenticate(address="x", cookie=f"{COOKIE_NAME}={second}").method \
        == "session"


def test_new_password_ends_every_session_and_works_at_once(web_app: App) -> None:
    value = web_app.login("appliance", WEB_PASSWORD).cookies[COOKIE_NAME].value
    assert web_app.cookie_get(value).status_code == 200
    appliance.auth.set_password(web_app.config_path, "another password")
    assert_401(web_app.cookie_get(value))
    assert_401(web_app.get(headers=basic("appliance", WEB_PASSWORD)))
    assert web_app.get(headers=basic("appliance", "another password")).status_code == 200


def test_session_table_is_bounded(web_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(appliance.auth, "MAX_SESSIONS", 3)
    values = []
    for i in range(4):
        web_app.offset = i  # later logins expire later; the soonest-expiring one goes
        values.append(web_app.login("appliance", WEB_PASSWORD).cookies[COOKIE_NAME].value)
    data = json.loads((web_app.config_path / "auth.json").read_text())
    assert len(data["sessions"]) == 3
    assert_401(web_app.cookie_get(values[0]))
    assert all(web_app.cookie_get(v).status_code == 200 for v in values[1:])


def test_unreadable_auth_file_fails_closed(make_app: Callable[..., App]) -> None:
    app = make_app()
    assert app.get().status_code == 200
    (app.config_path / "auth.json").write_text("{not json")
    assert_401(app.get())
    assert_401(app.get(headers=basic("appliance", WEB_PASSWORD)))
    with pytest.raises(ValueError, match="cannot read"):
        appliance.auth.show_token(app.config_path)  # would lose the password: refused
    appliance.auth.set_password(app.config_path, WEB_PASSWORD)  # rewrites it
    assert app.get(headers=basic("appliance", WEB_PASSWORD)).status_code == 200


# --- throttling ----------------------------------------------------------------------------------


def test_failures_are_throttled_logged_and_reset_by_success(
    env_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    env_app.offset = 0.0
    base = time.time()
    env_app.auth.clock = lambda: base + env_app.offset
    addr = "203.0.113.7"
    with caplog.at_level(logging.WARNING, logger="appliance.auth"):
        for _ in range(5):
            assert_401(env_app.get(headers=basic(USER, "guess"), remote_addr=addr))
    failures = [r.getMessage() for r in caplog.records if "authentication failed" in
                r.getMessage()]
    assert len(failures) == 5 and all(addr in m for m in failures)
    assert "failure 5" in failures[-1]
    # Blocked: even the right password gets 429 with Retry-After, and nothing is checked.
    for headers in (basic(USER, "guess"), basic(USER, PASSWORD)):
        blocked = env_app.get(headers=headers, remote_addr=addr)
        assert blocked.status_code == 429
        assert blocked.json["code"] == "TOO_MANY_REQUESTS"
        assert int(blocked.headers["Retry-After"]) >= 1
    login = env_app.login(USER, PASSWORD, remote_addr=addr)
    assert login.status_code == 429 and "Retry-After" in login.headers
    # Another address is not affected.
    assert env_app.get(headers=basic(USER, PASSWORD), remote_addr="198.51.100.1").status_code \
        == 200
    # The block grows: one more failure after it ends doubles it.
    env_app.offset = 0.6
    assert_401(env_app.get(headers=basic(USER, "guess"), remote_addr=addr))
    assert env_app.auth.throttle.retry_after(addr, base + 0.6) == pytest.approx(1.0)
    env_app.offset = 1.7
    assert env_app.login(USER, PASSWORD, remote_addr=addr).status_code == 200  # resets
    assert_401(env_app.get(headers=basic(USER, "guess"), remote_addr=addr))  # 401, not 429


def test_throttle_delays_grow_are_capped_and_the_table_is_bounded() -> None:
    throttle = Throttle(threshold=5, base=0.5, cap=10.0, max_entries=3)
    delays = []
    for _ in range(12):
        throttle.failure("a", 100.0)
        delays.append(throttle.retry_after("a", 100.0))
    assert delays[:4] == [0.0] * 4
    assert delays[4:9] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert delays[9:] == [10.0] * 3
    for address in ("b", "c", "d"):
        throttle.failure(address, 100.0)
    assert len(throttle) == 3
    assert throttle.retry_after("a", 100.0) == 0.0  # the oldest entry was dropped
    throttle.success("d")
    assert len(throttle) == 2
    throttle.failure("e", 100.0)
    throttle.failure("e", 100.0 + 10_000)  # long after: forgotten, starts over
    assert throttle.retry_after("e", 100.0 + 10_000) == 0.0


# --- websocket tickets over HTTP -----------------------------------------------------------------


def test_ws_ticket_needs_authentication_and_is_single_use(env_app: App) -> None:
    assert_401(env_app.client.simulate_post("/api/auth/ws-ticket"))
    result = env_app.client.simulate_post("/api/auth/ws-ticket", headers=basic(USER, PASSWORD))
    assert result.status_code == 200
    body = result.json
    assert body["expires"] > time.time() and len(body["ticket"]) >= 40
    query = {"ticket": body["ticket"]}
    # A ticket is for the websocket only: HTTP does not take it.
    assert_401(env_app.get(params=query))
    auth = env_app.auth
    assert auth.authenticate(address="x", query=query, allow_ticket=True).method == "ticket"
    with pytest.raises(appliance.errors.AppError):
        auth.authenticate(address="x", query=query, allow_ticket=True)
    ticket, _ = auth.issue_ticket()
    env_app.offset = sessions.TICKET_SECONDS + 1
    with pytest.raises(appliance.errors.AppError):
        auth.authenticate(address="x", query={"ticket": ticket}, allow_ticket=True)


# --- end to end: the real server, the real websocket, the CLI ------------------------------------


@pytest.mark.e2e
def test_real_server_http_token_rotation_and_cli(
    make_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = make_server(YTP_AUTH_USERNAME=USER, YTP_AUTH_PASSWORD=PASSWORD)
    config = server.root / "config"
    assert server.get("/api/ping").status_code == 200
    assert_401(server.get(PROTECTED))
    assert server.get(PROTECTED, auth=(USER, PASSWORD)).status_code == 200
    assert server.get(PROTECTED, params={"apikey": apikey(USER, PASSWORD)}).status_code == 200

    code, token, _ = cli(config, monkeypatch, capsys, "web", "showtoken")
    assert code == 0
    assert server.get(PROTECTED, headers={"Authorization": f"Token {token}"}).ok
    code, new, _ = cli(config, monkeypatch, capsys, "web", "gentoken")
    assert code == 0 and new != token
    assert_401(server.get(PROTECTED, headers={"Authorization": f"Token {token}"}))
    assert server.get(PROTECTED, headers={"Authorization": f"Token {new}"}).ok

    # `appliance status` on the same box sends the token from the auth file.
    monkeypatch.setenv("YTP_HOST", "127.0.0.1")
    monkeypatch.setenv("YTP_PORT", str(server.port))
    monkeypatch.delenv("YTP_AUTH_USERNAME", raising=False)
    code, out, _ = cli(config, monkeypatch, capsys, "status")
    assert code == 0 and "in queue" in out

    # Cookie login through the real server, then logout.
    session = requests.Session()
    login = session.post(server.url + "/api/auth/login?remember=true",
                         json={"username": USER, "password": PASSWORD}, timeout=30)
    assert login.status_code == 200
    assert "HttpOnly" in login.headers["Set-Cookie"]
    assert session.get(server.url + PROTECTED, timeout=30).ok
    assert session.post(server.url + "/api/auth/logout", timeout=30).ok
    assert_401(requests.get(server.url + PROTECTED, timeout=30,
                            cookies={COOKIE_NAME: login.cookies[COOKIE_NAME]}))


@pytest.mark.e2e
def test_real_websocket_credentials(make_server: Callable[..., Server]) -> None:
    server = make_server(YTP_AUTH_USERNAME=USER, YTP_AUTH_PASSWORD=PASSWORD)
    config = server.root / "config"

    def refused(url: str, headers: dict[str, str] | None = None) -> int:
        with pytest.raises(InvalidStatus) as exc, connect(url, additional_headers=headers):
            pass
        assert exc.value.response.headers["WWW-Authenticate"].startswith("Basic")
        return exc.value.response.status_code

    def accepted(url: str, headers: dict[str, str] | None = None) -> None:
        with connect(url, additional_headers=headers, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["event"] == "connected"

    assert refused(server.ws_url) == 401
    assert refused(server.ws_url, basic(USER, "wrong")) == 401
    assert refused(server.ws_url + "?apikey=" + apikey(USER, "wrong")) == 401
    accepted(server.ws_url + "?apikey=" + apikey(USER, PASSWORD).rstrip("="))
    accepted(server.ws_url, basic(USER, PASSWORD))

    token = appliance.auth.show_token(config)
    accepted(server.ws_url, {"Authorization": f"Token {token}"})
    new = appliance.auth.gen_token(config)
    assert refused(server.ws_url, {"Authorization": f"Token {token}"}) == 401
    accepted(server.ws_url, {"Authorization": f"Token {new}"})

    assert server.post("/api/auth/ws-ticket").status_code == 401
    ticket = server.post("/api/auth/ws-ticket", auth=(USER, PASSWORD)).json()["ticket"]
    accepted(f"{server.ws_url}?ticket={ticket}")
    assert refused(f"{server.ws_url}?ticket={ticket}") == 401  # single use

    login = requests.post(server.url + "/api/auth/login",
                          json={"username": USER, "password": PASSWORD}, timeout=30)
    cookie = login.cookies[COOKIE_NAME]
    accepted(server.ws_url, {"Cookie": f"{COOKIE_NAME}={cookie}"})
    assert refused(server.ws_url, {"Cookie": f"{COOKIE_NAME}={cookie}x"}) == 401
