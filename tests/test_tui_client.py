"""The wire-protocol client (appliance.client) and the TUI's boundary: connection resolution,
frames, the queue model, and ``appliance add``/``status`` against the real service."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.origin import MediaOrigin
from support.server import Server, wait_for

from appliance.client import (
    ApiClient,
    ApiError,
    Connection,
    ConnectionFileProblem,
    LiveEvent,
    LocalService,
    Unreachable,
    parse_frame,
    resolve,
)
from appliance.client.connection import config_file
from appliance.client.http import _error_from
from appliance.tui.model import Missed, QueueModel

PACKAGE = Path(__file__).resolve().parent.parent / "appliance"
ALLOWED = ("appliance.client", "appliance.tui")


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Absolute names of every import in a module (relative ones resolved)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield node.lineno, name


def test_tui_and_client_know_only_the_wire_protocol() -> None:
    """Neither the TUI nor the client imports the service's code (engine, store, api,
    config, auth, …): only each other."""
    offending = []
    files = [*(PACKAGE / "tui").rglob("*.py"), *(PACKAGE / "client").rglob("*.py")]
    assert len(files) > 10
    for path in files:
        for line, name in _imports(path):
            if (name == "appliance" or name.startswith("appliance.")) and not name.startswith(
                    ALLOWED):
                offending.append(f"{path.relative_to(PACKAGE)}:{line} imports {name}")
    assert offending == []


def test_the_boundary_check_sees_relative_imports(tmp_path: Path) -> None:
    # The check above must catch `from ..engine import x` written inside appliance/tui.
    bad = PACKAGE / "tui" / "_probe_boundary.py"
    bad.write_text("from ..engine import engine\nfrom . import model\n")
    try:
        names = [name for _, name in _imports(bad)]
    finally:
        bad.unlink()
    assert names == ["appliance.engine", "appliance.tui"]


# --- connection resolution -----------------------------------------------------------------


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), **values}


def _client_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = config_file(_env(tmp_path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


LOCAL = LocalService("http://127.0.0.1:8081", token="local-token")


def test_default_is_the_local_service_with_its_auth_file_token(tmp_path: Path) -> None:
    connection = resolve(env=_env(tmp_path), local=LOCAL)
    assert connection.url == "http://127.0.0.1:8081"
    assert connection.authorization() == "Token local-token"
    assert "local-token" not in repr(connection)


def test_command_line_then_environment_then_file(tmp_path: Path) -> None:
    _client_file(tmp_path, 'url = "http://file:1"\ntoken = "file-token"\n')
    env = _env(tmp_path, APPLIANCE_URL="http://env:2", APPLIANCE_TOKEN="env-token")
    assert resolve(url="flag:3", env=env, local=LOCAL).url == "http://flag:3"
    from_env = resolve(env=env, local=LOCAL)
    assert (from_env.url, from_env.token) == ("http://env:2", "env-token")
    assert from_env.source == "APPLIANCE_URL"
    from_file = resolve(env=_env(tmp_path), local=LOCAL)
    assert (from_file.url, from_file.token) == ("http://file:1", "file-token")


def test_the_local_token_goes_only_to_the_local_service(tmp_path: Path) -> None:
    remote = resolve(url="http://nas:8081", env=_env(tmp_path), local=LOCAL)
    assert remote.authorization() is None


def test_user_and_prompted_password_make_basic_auth(tmp_path: Path) -> None:
    connection = resolve(user="appliance", password="s3cret pass", env=_env(tmp_path),
                         local=LOCAL)
    assert connection.authorization() == "Basic YXBwbGlhbmNlOnMzY3JldCBwYXNz"
    assert "s3cret" not in repr(connection)


def test_a_client_file_with_a_secret_that_others_may_read_is_refused(tmp_path: Path) -> None:
    path = _client_file(tmp_path, 'token = "t"\n', mode=0o644)
    with pytest.raises(ConnectionFileProblem, match=f"chmod 600 {path}"):
        resolve(env=_env(tmp_path), local=LOCAL)
    path.chmod(0o600)
    assert resolve(env=_env(tmp_path), local=LOCAL).token == "t"


def test_a_bad_client_file_says_which_and_why(tmp_path: Path) -> None:
    _client_file(tmp_path, "url = \n")
    with pytest.raises(ConnectionFileProblem, match="not valid TOML"):
        resolve(env=_env(tmp_path), local=LOCAL)


def test_a_client_file_with_a_password_makes_basic_auth(tmp_path: Path) -> None:
    path = _client_file(tmp_path, 'url = "http://nas:8081"\npassword = "pw"\n')
    assert path == tmp_path / "xdg" / "appliance" / "client.toml"
    connection = resolve(env=_env(tmp_path), local=LOCAL)
    assert (connection.user, connection.source) == ("appliance", str(path))
    assert connection.authorization() == "Basic YXBwbGlhbmNlOnB3"


def test_a_client_file_names_the_user_of_its_password(tmp_path: Path) -> None:
    _client_file(tmp_path, 'url = "http://nas:8081"\nuser = "ann"\npassword = "pw"\n')
    connection = resolve(env=_env(tmp_path), local=LOCAL)
    assert connection.authorization() == "Basic YW5uOnB3"  # ann:pw


def test_the_local_services_password_goes_to_the_local_service(tmp_path: Path) -> None:
    local = LocalService("http://127.0.0.1:8081", user="admin", password="pw")
    connection = resolve(url="127.0.0.1:8081/", env=_env(tmp_path), local=local)
    assert connection.authorization() == "Basic YWRtaW46cHc="


def test_credentials_in_an_address_are_taken_out_of_it(tmp_path: Path) -> None:
    """``http://user:token@host/`` (any source): the address is shown in every message, the
    credentials go in the Authorization header only, the websocket's too."""
    connection = resolve(url="admin:pa%40ss:w@nas:8081/", env=_env(tmp_path), local=LOCAL)
    assert (connection.url, connection.user, connection.source) == (
        "http://nas:8081", "admin", "--url")
    assert connection.authorization() == "Basic YWRtaW46cGFAc3M6dw=="  # admin:pa@ss:w
    assert "pa@ss" not in repr(connection)
    env = _env(tmp_path, APPLIANCE_URL="https://u:secret@nas/base", APPLIANCE_TOKEN="t")
    from_env = resolve(env=env, local=LOCAL)
    assert (from_env.url, from_env.authorization()) == ("https://nas/base", "Basic dTpzZWNyZXQ=")
    prompted = resolve(url="http://u:secret@nas", user="ann", password="pw", env=env)
    assert (prompted.url, prompted.authorization()) == ("http://nas", "Basic YW5uOnB3")
    _client_file(tmp_path, 'url = "http://a:b@c@nas:1/x?y#z"\n')
    from_file = resolve(env=_env(tmp_path), local=LOCAL)
    assert (from_file.url, from_file.user, from_file.password) == ("http://nas:1/x?y#z", "a",
                                                                   "b@c")
    token_only = resolve(url="http://tok@nas", env=_env(tmp_path), local=LOCAL)
    assert (token_only.url, token_only.user, token_only.password) == ("http://nas", "tok", "")
    plain = resolve(url="http://nas/a@b", env=_env(tmp_path), local=LOCAL)  # "@" in the path
    assert (plain.url, plain.user) == ("http://nas/a@b", None)


def test_the_client_file_is_under_home_without_xdg() -> None:
    assert config_file({"HOME": "/home/ann"}) == Path("/home/ann/.config/appliance/client.toml")


def test_no_address_anywhere_says_where_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(ConnectionFileProblem, match="--url"):
        resolve(env=_env(tmp_path), local=None)


# --- frames and the queue model ------------------------------------------------------------


def test_frames_in_ytptube_envelope_and_bare() -> None:
    item = {"id": "a", "kind": "queue", "status": "pending", "title": "t"}
    wrapped = parse_frame('{"event": "item_added", "data": {"id": "e1", "created_at": "x", '
                          '"event": "item_added", "title": "Added", "message": "m", '
                          '"data": {"id": "a", "kind": "queue"}}}')
    assert wrapped is not None
    assert (wrapped.name, wrapped.data, wrapped.title, wrapped.message) == (
        "item_added", {"id": "a", "kind": "queue"}, "Added", "m")
    bare = parse_frame('{"event": "item_added", "data": ' + str(item).replace("'", '"') + "}")
    assert bare is not None and bare.data == item
    assert parse_frame("not json") is None
    assert parse_frame('{"data": 1}') is None
    assert wrapped.created_at == "x" and bare.created_at is None
    # A bare payload that has an "event" of its own (a log record's) is not an envelope.
    record = parse_frame('{"event": "log_info", "data": {"event": "x", "created_at": 1}}')
    assert record is not None and record.data == {"event": "x", "created_at": 1}


def _event(name: str, data: object) -> LiveEvent:
    return LiveEvent(name, data)


def test_model_takes_progress_with_numbers_and_moves() -> None:
    model = QueueModel()
    model.snapshot({"history_count": 3, "queue": {
        "a": {"id": "a", "kind": "queue", "status": "downloading", "title": "A"}}})
    model.apply(_event("item_updated", {"id": "a", "status": "downloading", "speed": 2048.0,
                                        "eta": 7, "percent": 50}))
    assert model.totals()["speed"] == 2048.0
    assert model.items["a"]["percent"] == 50
    done = {"id": "a", "kind": "done", "status": "finished", "title": "A"}
    model.apply(_event("item_moved", {"to": "done", "item": done}))
    assert model.items["a"]["status"] == "finished" and model.history_count == 4
    # A progress event that arrives after the end does not bring the item back to life.
    model.apply(_event("item_updated", {"id": "a", "status": "downloading", "percent": 60}))
    assert model.items["a"]["status"] == "finished"
    model.clear_ended()
    assert "a" not in model.items and model.take_changes()[1] == {"a"}


def test_snapshot_names_items_that_ended_while_away() -> None:
    model = QueueModel()
    first = model.snapshot({"history_count": 7, "queue": {
        "a": {"id": "a", "kind": "queue", "status": "downloading"},
        "b": {"id": "b", "kind": "queue", "status": "pending"}}})
    assert first == Missed([], 0)  # the first connect: the history is not the queue's
    # "a" ended while away, and another item was added and ended unseen: 2 more in history.
    assert model.snapshot({"history_count": 9, "queue": {
        "b": {"id": "b", "kind": "queue", "status": "downloading"}}}) == Missed(["a"], 2)
    for item_id in ("a", "c"):
        model.ended_meanwhile({"id": item_id, "kind": "done", "status": "finished"})
    assert model.items["c"]["status"] == "finished" and model.history_count == 9


# --- against the real service --------------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("tui-client"), {
        "YTP_AUTH_USERNAME": "admin", "YTP_AUTH_PASSWORD": "correct horse"}).start()
    server.session.auth = ("admin", "correct horse")
    yield server
    server.stop()


def _cli(server: Server, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in server.env.items() if not k.startswith("APPLIANCE_")}
    environment.update(HOME=str(server.root), XDG_CONFIG_HOME=str(server.root / "xdg"), **env)
    return subprocess.run([sys.executable, "-m", "appliance", *args], env=environment,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_add_and_status_use_the_local_service_and_its_credentials(
        service: Server, origin: MediaOrigin) -> None:
    added = _cli(service, "add", origin.clip_url, origin.short_url)
    assert added.returncode == 0, added.stderr
    lines = added.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("queued ") for line in lines)
    for line in lines:
        service.wait_status(line.split()[1], {"finished"}, timeout=60)
    status = _cli(service, "status")
    assert status.returncode == 0, status.stderr
    assert "in queue, 2 in history" in status.stdout
    assert "shown" not in status.stdout  # the whole queue was listed


def test_add_shows_the_services_error_text_as_is(service: Server) -> None:
    refused = _cli(service, "add", "ftp://example.invalid/x")
    assert refused.returncode == 1
    expected = service.post("/api/history", {"url": "ftp://example.invalid/x"}).json()["error"]
    assert refused.stderr.strip() == f"appliance: {expected}"


def test_wrong_credentials_say_what_to_do(service: Server) -> None:
    result = _cli(service, "status", "--url", service.url, APPLIANCE_TOKEN="wrong")
    assert result.returncode == 1
    assert "Invalid credentials." in result.stderr and "appliance web showtoken" in result.stderr


def test_unreachable_service_says_so(tmp_path: Path) -> None:
    client = ApiClient(Connection("http://127.0.0.1:9"))
    with pytest.raises(Unreachable) as caught:
        client.live()
    assert caught.value.reason == "connection refused"
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "x"),
           "YTP_CONFIG_PATH": str(tmp_path / "config")}
    result = subprocess.run([sys.executable, "-m", "appliance", "status", "--url",
                             "127.0.0.1:9"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "not reachable at http://127.0.0.1:9: connection refused" in result.stderr
    assert "systemctl status appliance" in result.stderr


def test_client_errors_carry_the_error_body(service: Server) -> None:
    client = ApiClient(Connection(service.url, user="admin", password="correct horse"))
    with pytest.raises(ApiError) as caught:
        client.item("no-such-id")
    assert (caught.value.status, caught.value.message, caught.value.code) == (
        404, "Item not found.", "NOT_FOUND")


def test_client_calls_send_their_body_and_query_and_read_the_answer(
        service: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy in the environment is not for a service on the LAN or this box.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    client = ApiClient(Connection(service.url, user="admin", password="correct horse"))
    [answer] = client.add([{"url": "https://example.invalid/client-call", "auto_start": False}])
    assert answer["status"] == "queued", answer
    assert client.item(answer["id"])["url"] == "https://example.invalid/client-call"
    page = client.logs(limit=1)
    assert page["limit"] == 1 and len(page["logs"]) == 1
    assert client.delete([answer["id"]], kind="queue", remove_file=False)
    with pytest.raises(ApiError) as caught:
        client.item(answer["id"])
    assert caught.value.status == 404


def test_error_answers_without_the_apis_body(service: Server) -> None:
    """A proxy's or an older service's error: its ``message``, else the status line."""
    error = _error_from(502, "Bad Gateway", b'{"message": "upstream down"}')
    assert (error.status, error.message, error.code) == (502, "upstream down", "")
    assert _error_from(502, "Bad Gateway", b'{"detail": 1}').message == "HTTP 502 Bad Gateway"
    assert _error_from(502, "Bad Gateway", b"<html>").message == "HTTP 502 Bad Gateway"


def test_numbers_as_the_tui_shows_them() -> None:
    from appliance.tui import format as fmt

    assert (fmt.size(0), fmt.size(1536), fmt.size(5 * 2**30)) == ("0 B", "1.5 KiB", "5.0 GiB")
    assert fmt.speed(2048.0) == "2.0 KiB/s" and fmt.speed(None) == ""
    assert (fmt.eta(59), fmt.eta(3725), fmt.eta(None)) == ("0:59", "1:02:05", "")
    seconds = 1_796_256_136.2
    assert fmt.when(seconds) == fmt.when(int(seconds * 1e9)) != ""  # ns as YTPTube sends
    assert fmt.when(1e300).startswith("1")  # out of range: shown, not a crash
    assert fmt.bar(50, "downloading").plain == "███░░░  50%"
    assert fmt.bar(None, "pending").plain == ""


def test_status_shows_a_sites_terminal_sequences_never_sends_them(
        service: Server, origin: MediaOrigin) -> None:
    title = "\x1b]2;PWNED\x07\x1b[2J\x9b1m"
    added = service.post("/api/history", {"url": origin.watch_url("clip2", title=title),
                                          "auto_start": False}).json()
    wait_for(lambda: service.item(added[0]["id"]).get("title") == title,
             timeout=120, message="the site's title on the waiting item")
    status = _cli(service, "status")
    assert status.returncode == 0, status.stderr
    assert "␛]2;PWNED␇␛[2J�1m" in status.stdout
    assert not any(ch in status.stdout for ch in "\x1b\x07\x9b")
