"""The authenticator on its own, in process: how each credential is named and checked,
sessions and their end, file tickets, what a refusal says and logs, and that no right
credential carries a wrong one in (nor a token forgives password guesses)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from conftest import make_settings

from appliance.auth import (
    COOKIE_NAME,
    Authenticator,
    Identity,
    gen_token,
    sessions,
    set_password,
)
from appliance.auth.authfile import with_changes
from appliance.auth.checker import PasswordChecker
from appliance.auth.passwords import verify_password
from appliance.errors import AppError


def _authenticator(tmp_path: Path, **env: str) -> Authenticator:
    return Authenticator(make_settings(tmp_path, **env))


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_each_credential_names_how_it_was_given(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    token = gen_token(auth.settings.current.config_path)
    assert auth.authenticate(address="a", authorization=_basic("u", "pw-123456")) == \
        Identity("u", "basic")
    key = base64.urlsafe_b64encode(b"u:pw-123456").decode()
    assert auth.authenticate(address="a", query={"apikey": key}) == Identity("u", "apikey")
    assert auth.authenticate(address="a", authorization=f"Token {token}") == \
        Identity("appliance", "token")
    session = auth.login("u", "pw-123456", address="a", remember=False)
    session_id = session.cookie.split(".")[1]
    assert auth.authenticate(address="a", cookie=f"{COOKIE_NAME}={session.cookie}") == \
        Identity("session", "session", session_id)


def test_an_apikey_whose_plus_became_a_space_still_works(tmp_path: Path) -> None:
    password = "pw>>>>>~~"  # "u:pw>>>>>~~" in standard base64 has a "+" (and no "/")
    assert "+" in base64.b64encode(f"u:{password}".encode()).decode()
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD=password)
    key = base64.b64encode(f"u:{password}".encode()).decode()
    assert auth.authenticate(address="a", query=f"apikey={key}") == Identity("u", "apikey")


@pytest.mark.parametrize(("authorization", "kind"), [
    ("Token wrong", "token"), (_basic("u", "nope-nope"), "basic"), ("Bearer x", "unreadable"),
])
def test_failures_are_logged_by_kind(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                     authorization: str, kind: str) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    with pytest.raises(AppError) as caught:
        auth.authenticate(address="203.0.113.5", authorization=authorization)
    assert caught.value.code == "UNAUTHORIZED"
    assert f"authentication failed from 203.0.113.5: invalid credentials ({kind}) " \
           f"(failure 1)" in caplog.text


def test_logout_says_whether_a_session_ended(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    assert auth.logout(f"{COOKIE_NAME}=v1.x.1.y") is False  # no secret yet: nothing to end
    session = auth.login("u", "pw-123456", address="a", remember=True)
    cookie = f"{COOKIE_NAME}={session.cookie}"
    assert auth.logout(cookie) is True
    assert auth.logout(cookie) is False
    with pytest.raises(AppError):
        auth.authenticate(address="a", cookie=cookie)


def test_a_session_store_that_cannot_be_written_is_a_503(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    auth.file.path.mkdir(parents=True)  # the auth file's name is taken by a folder
    with pytest.raises(AppError) as caught:
        auth.login("u", "pw-123456", address="a", remember=False)
    assert caught.value.code == "UNAVAILABLE"
    assert caught.value.message == "The session store cannot be written; see the server log."
    assert f"cannot update {auth.file.path}: " in caplog.text


def test_describe_names_every_source(tmp_path: Path) -> None:
    assert _authenticator(tmp_path / "open").describe() == "none"
    auth = _authenticator(tmp_path / "env", YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    assert auth.describe() == "YTP_AUTH_USERNAME/YTP_AUTH_PASSWORD"
    set_password(auth.settings.current.config_path, "web-pass-1")
    assert auth.describe() == ("YTP_AUTH_USERNAME/YTP_AUTH_PASSWORD and web passwd "
                               f"({auth.file.path})")
    broken = _authenticator(tmp_path / "broken")
    broken.file.folder.mkdir(parents=True)
    broken.file.path.write_text("{not json")
    assert broken.describe() == f"unreadable {broken.file.path} (nothing accepted from it)"


def test_an_open_service_names_everyone_anonymous(tmp_path: Path) -> None:
    assert _authenticator(tmp_path).authenticate(address="a") == Identity("anonymous", "open")


def test_a_blocked_address_is_told_when_to_come_back(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    for _ in range(5):
        with pytest.raises(AppError):
            auth.authenticate(address="b", authorization="Token wrong")
    with pytest.raises(AppError) as blocked:
        auth.authenticate(address="b", authorization=_basic("u", "pw-123456"))
    assert blocked.value.code == "TOO_MANY_REQUESTS"
    assert blocked.value.message == "Too many failed attempts; try again in 1 s."
    assert blocked.value.headers == {"Retry-After": "1"}


def test_a_login_clears_the_addresss_failures_and_is_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="appliance.auth")
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    for _ in range(4):
        with pytest.raises(AppError):
            auth.login("u", "wrong-pass", address="c", remember=False)
    auth.login("u", "pw-123456", address="c", remember=True)
    assert "login from c as u (remembered)" in caplog.text
    assert auth.throttle.retry_after("c", now=auth.clock()) == 0.0 and len(auth.throttle) == 0


def test_the_auth_file_says_when_it_is_reloaded_or_refused(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="appliance.auth")
    auth = _authenticator(tmp_path)
    config = auth.settings.current.config_path
    set_password(config, "web-pass-1")
    assert auth.state().password is not None  # first read: nothing said
    assert "reloaded" not in caplog.text
    gen_token(config)
    assert auth.state().token is not None
    assert f"{auth.file.path} changed; reloaded" in caplog.text
    auth.file.path.write_text("[]")
    assert auth.state().broken
    assert f"{auth.file.path}: cannot read: " in caplog.text
    assert "refusing every credential from it until it is fixed (appliance web passwd " \
           "rewrites it)" in caplog.text


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "Authentication required."),
    ({"query": "apikey="}, "Invalid credentials."),  # an empty key is a wrong key
    ({"authorization": "Token  wrong"}, "Invalid credentials."),
])
def test_401s_name_the_realm_and_the_reason(tmp_path: Path, kwargs: dict, message: str) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    with pytest.raises(AppError) as caught:
        auth.authenticate(address="a", **kwargs)
    assert (caught.value.code, caught.value.message) == ("UNAUTHORIZED", message)
    assert caught.value.headers == {"WWW-Authenticate": 'Basic realm="appliance", '
                                                        'charset="UTF-8"'}


def test_credentials_in_every_form_a_client_sends_them(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    token = gen_token(auth.settings.current.config_path)
    key = base64.urlsafe_b64encode(b"u:pw-123456").decode()
    assert auth.authenticate(address="a", query={"apikey": [key]}).method == "apikey"
    assert auth.authenticate(address="a", authorization=f"Token  {token}").method == "token"


def test_logout_before_any_login_ends_nothing(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path)
    set_password(auth.settings.current.config_path, "web-pass-1")  # no secret until a login
    assert auth.logout(f"{COOKIE_NAME}=v1.x.1.y") is False


def test_log_lines_are_whole(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="appliance.auth")
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    auth.login("u", "pw-123456", address="d", remember=False)
    assert "login from d as u (browser session)" in [r.getMessage() for r in caplog.records]
    auth.file.path.unlink()
    auth.file.path.mkdir()
    with pytest.raises(AppError):
        auth.login("u", "pw-123456", address="d", remember=False)
    [line] = [r.getMessage() for r in caplog.records if "cannot update" in r.getMessage()]
    assert line.startswith(f"cannot update {auth.file.path}: ") and "Is a directory" in line


def test_a_right_credential_carries_no_wrong_one_in(tmp_path: Path) -> None:
    """Passwords sent beside a right token (or a right one beside another) are guesses: the
    request is refused and counted, as any wrong password is. Unrefused, a token's holder
    could try the password three a request, the throttle never counting them (and an open
    socket again at each change of the credentials)."""
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    token = gen_token(auth.settings.current.config_path)
    right = base64.urlsafe_b64encode(b"u:pw-123456").decode()
    guesses = [base64.urlsafe_b64encode(f"u:guess-{n}".encode()).decode() for n in range(3)]
    # every one right: let in, by the first
    assert auth.authenticate(address="a", authorization=f"Token {token}",
                             query={"apikey": [right, right]}) == Identity("u", "apikey")
    for address, how in (("b", {"authorization": f"Token {token}"}),
                         ("c", {"authorization": _basic("u", "pw-123456")}),
                         ("d", {"query": {"apikey": [right]}})):
        extra = {"query": {"apikey": [*how.get("query", {}).get("apikey", []), *guesses]}}
        with pytest.raises(AppError) as caught:
            auth.authenticate(address=address, **{**how, **extra})
        assert (caught.value.code, caught.value.message) == ("UNAUTHORIZED",
                                                             "Invalid credentials.")
    # a wrong one before the right one as well
    with pytest.raises(AppError):
        auth.authenticate(address="f", query={"apikey": [guesses[0], right]})
    # and asked again for an open socket (no guess: not counted, still refused)
    with pytest.raises(AppError):
        auth.authenticate(address="e", authorization=f"Token {token}",
                          query={"apikey": guesses}, guess=False)
    # counted as failures: the address is blocked in the end, its right token included
    for _ in range(4):
        with pytest.raises(AppError):
            auth.authenticate(address="b", authorization=f"Token {token}",
                              query={"apikey": guesses[:1]})
    with pytest.raises(AppError) as blocked:
        auth.authenticate(address="b", authorization=f"Token {token}")
    assert blocked.value.code == "TOO_MANY_REQUESTS"


@pytest.mark.parametrize("via", ["login", "basic"])
def test_a_wrong_user_name_is_answered_as_a_right_one_is(tmp_path: Path, via: str) -> None:
    """With both the YTP credentials and a `web passwd` password, a known user name (the YTP
    one) had its password hashed and an unknown one did not: sooner answered, and, with every
    hashing slot busy (a guesser's own flood does that), 401 where the known name was 429.
    Either told a stranger the YTP user name, half of what the throttle guards."""
    settings = make_settings(tmp_path, YTP_AUTH_USERNAME="u-secret", YTP_AUTH_PASSWORD="pw-123456")
    set_password(settings.config_path, "web-pass-1")
    auth = Authenticator(settings, checker=PasswordChecker(slots=0))  # every slot busy

    def answer(user: str) -> str:
        with pytest.raises(AppError) as caught:
            if via == "login":
                auth.login(user, "wrong-pass", address=user, remember=False)
            else:
                auth.authenticate(address=user, authorization=_basic(user, "wrong-pass"))
        return caught.value.code

    assert answer("u-secret") == "TOO_MANY_REQUESTS"  # its password is hashed: no slot
    assert answer("appliance") == "TOO_MANY_REQUESTS"
    assert answer("u-guess") == "TOO_MANY_REQUESTS"  # hashed all the same


def test_the_right_password_under_an_unknown_name_is_refused(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    set_password(auth.settings.current.config_path, "web-pass-1")
    for user, password in [("stranger", "web-pass-1"), ("stranger", "pw-123456"),
                           ("u", "web-pass-1x"), ("appliance", "pw-123456")]:
        with pytest.raises(AppError) as caught:
            auth.authenticate(address="a", authorization=_basic(user, password))
        assert caught.value.code == "UNAUTHORIZED", (user, password)
    assert auth.authenticate(address="a", authorization=_basic("u", "web-pass-1")) == \
        Identity("u", "basic")
    assert auth.authenticate(address="a", authorization=_basic("appliance", "web-pass-1")) == \
        Identity("appliance", "basic")


def test_a_session_whose_expiry_is_no_time_is_dropped_not_a_500(tmp_path: Path) -> None:
    """A hand-edited or damaged auth file: an expiry too large for a float raised
    OverflowError (not the ValueError the reader catches: a 500 on every request), and one of
    Infinity or NaN kept its session for ever (NaN is never past)."""
    auth = _authenticator(tmp_path)
    config = auth.settings.current.config_path
    set_password(config, "web-pass-1")
    data = json.loads(auth.file.path.read_text())
    data["sessions"] = {"huge": 10**400, "inf": float("inf"), "nan": float("nan"), "ok": 2e9}
    auth.file.path.write_text(json.dumps(data))
    state = auth.state()
    assert not state.broken and dict(state.sessions) == {"ok": 2e9}
    assert auth.authenticate(address="a", authorization=_basic("appliance", "web-pass-1")) == \
        Identity("appliance", "basic")


def test_a_file_ticket_opens_its_file_only_until_it_expires(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="appliance.auth")
    now = [1_000_000.0]
    auth = Authenticator(make_settings(tmp_path, YTP_AUTH_USERNAME="u",
                                       YTP_AUTH_PASSWORD="pw-123456"), clock=lambda: now[0])
    ticket, expires = auth.issue_file_ticket("shows/a.mp4")
    assert expires == now[0] + sessions.FILE_TICKET_SECONDS
    ws_ticket, _ = auth.issue_ticket()

    def code(value: str, scope: str | None = "shows/a.mp4", **kwargs: object) -> str:
        file_scope = None if scope is None else (lambda: scope)
        try:
            auth.authenticate(address="a", query={"ticket": value}, file_scope=file_scope,
                              **kwargs)  # type: ignore[arg-type]
        except AppError as exc:
            return exc.code
        return "OK"

    def unasked() -> str:
        raise AssertionError("the path is resolved only for a live file ticket")

    assert code(ticket) == "OK" and code(ticket) == "OK"  # as often as the player likes
    assert auth.authenticate(address="a", query={"ticket": ticket},
                             file_scope=lambda: "shows/a.mp4") == Identity("ticket", "ticket")
    assert code(ticket, "shows/b.mp4") == "FORBIDDEN"
    assert "file ticket from a is for another file" in caplog.text
    assert code("made-up") == "UNAUTHORIZED"
    with pytest.raises(AppError) as made_up:
        auth.authenticate(address="a", query={"ticket": "made-up"}, file_scope=unasked)
    assert made_up.value.message == "The ticket is unknown, already used or expired."
    assert "ticket from a is unknown, used or expired" in caplog.text
    assert code(ticket, None, allow_ticket=True) == "UNAUTHORIZED"  # not a websocket's
    assert code(ws_ticket) == "UNAUTHORIZED"  # a websocket's does not open a file
    assert code(ws_ticket, None, allow_ticket=True) == "OK"
    ws_ticket, _ = auth.issue_ticket()
    assert auth.authenticate(address="a", query={"ticket": ws_ticket}, allow_ticket=True) == \
        Identity("ticket", "ticket")
    with pytest.raises(AppError) as other:
        auth.authenticate(address="a", query={"ticket": ticket}, file_scope=lambda: "b.mp4")
    assert other.value.message == "The ticket is for another file."
    now[0] = expires - 0.5
    assert code(ticket) == "OK"
    now[0] = expires
    assert code(ticket) == "UNAUTHORIZED"


def test_an_apikey_in_url_safe_base64_is_taken(tmp_path: Path) -> None:
    password = "pw>>>?????"  # "u:pw>>>?????" in URL-safe base64 has "-" and "_"
    key = base64.urlsafe_b64encode(f"u:{password}".encode()).decode()
    assert "-" in key and "_" in key
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD=password)
    assert auth.authenticate(address="a", query={"apikey": key}) == Identity("u", "apikey")


def test_several_right_credentials_are_named_by_the_first(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    key = base64.urlsafe_b64encode(b"u:pw-123456").decode()
    assert auth.authenticate(address="a", authorization=_basic("u", "pw-123456"),
                             query={"apikey": [key, key]}) == Identity("u", "basic")


def test_new_ytp_credentials_end_the_login_sessions(tmp_path: Path) -> None:
    now = 1_000_000.0
    first = Authenticator(make_settings(tmp_path, YTP_AUTH_USERNAME="u",
                                        YTP_AUTH_PASSWORD="pw-123456"), clock=lambda: now)
    session = first.login("u", "pw-123456", address="a", remember=True)
    assert session.expires == int(now) + sessions.REMEMBER_SECONDS
    assert session.max_age == sessions.REMEMBER_SECONDS
    assert first.login("u", "pw-123456", address="a", remember=False).expires == \
        int(now) + sessions.BROWSER_SECONDS
    cookie = f"{COOKIE_NAME}={session.cookie}"
    assert first.authenticate(address="a", cookie=cookie).method == "session"
    for env in ({"YTP_AUTH_PASSWORD": "pw-654321"}, {"YTP_AUTH_USERNAME": "v"}):
        changed = Authenticator(make_settings(tmp_path, **{
            "YTP_AUTH_USERNAME": "u", "YTP_AUTH_PASSWORD": "pw-123456", **env}),
            clock=lambda: now)
        with pytest.raises(AppError) as caught:
            changed.authenticate(address="a", cookie=cookie)
        assert caught.value.message == "The session has expired or was ended; log in again."


def test_a_right_token_does_not_forgive_password_guesses(tmp_path: Path) -> None:
    now = 1_000_000.0
    auth = Authenticator(make_settings(tmp_path), clock=lambda: now)
    set_password(auth.settings.current.config_path, "web-pass-1")
    token = gen_token(auth.settings.current.config_path)

    def guess(address: str, password: str) -> str:
        try:
            auth.authenticate(address=address, authorization=_basic("appliance", password))
        except AppError as exc:
            return exc.code
        return "OK"

    for n in range(4):
        assert guess("a", f"guess-{n}") == "UNAUTHORIZED"
        assert auth.authenticate(address="a", authorization=f"Token {token}").method == "token"
    assert guess("a", "guess-4") == "UNAUTHORIZED"  # the fifth failure: blocked from here on
    assert guess("a", "guess-5") == "TOO_MANY_REQUESTS"
    # the right password does forgive a person's typos
    for n in range(4):
        assert guess("b", f"typo-{n}") == "UNAUTHORIZED"
    assert guess("b", "web-pass-1") == "OK"
    assert [guess("b", f"typo-{n}") for n in range(5)] == ["UNAUTHORIZED"] * 5


def test_a_hash_stored_years_ago_still_verifies_and_one_past_the_memory_bound_never() -> None:
    # Written by this code once and kept: the service runs for years on one auth file, so
    # the format (salt, key length, padding) must read the same for as long.
    stored = "scrypt$16384$8$1$J8vP6ULoUGV8S2oRUcPEJg$Pr8WLom5doaVbXH8msO2Uyf_f6mcj-Uik2V4BGSAtqE"
    assert verify_password("kept-for-years", stored)
    assert not verify_password("kept-for-years!", stored)
    # n = 2**20 with r = 8 needs 1 GiB, past the bound: scrypt refuses, and so does verify
    salt_and_key = stored.split("$", 4)[4]
    assert not verify_password("kept-for-years", f"scrypt$1048576$8$1${salt_and_key}")


def test_an_unreadable_auth_file_is_said_and_rewritten_by_web_passwd(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    auth = _authenticator(tmp_path)
    config = auth.settings.current.config_path
    set_password(config, "web-pass-1")
    auth.file.path.write_text("[]")
    assert auth.state().broken
    assert f"{auth.file.path}: cannot read: top level is not an object" in caplog.text
    set_password(config, "web-pass-2")
    assert f"{auth.file.path} was unreadable (top level is not an object); rewriting it" \
        in caplog.text
    assert not auth.state().broken


def test_a_rewritten_auth_file_is_always_newer_than_the_old(tmp_path: Path) -> None:
    # A coarse clock (or one set back) could give the new file the old one's mtime, and with
    # a reused inode the service would keep the old state: the rewrite is made newer.
    auth = _authenticator(tmp_path)
    config = auth.settings.current.config_path
    set_password(config, "web-pass-1")
    future = os.stat(auth.file.path).st_mtime_ns + 10**12  # some 17 minutes ahead
    os.utime(auth.file.path, ns=(future, future))
    gen_token(config)
    assert os.stat(auth.file.path).st_mtime_ns == future + 1


def test_a_query_string_without_credentials_is_asked_for_them(tmp_path: Path) -> None:
    """The websocket hands the raw query string: one with other parameters only is no
    credential (401 asking for one), not a crash."""
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    with pytest.raises(AppError) as refused:
        auth.authenticate(address="a", query="since=5&x=")
    assert refused.value.message == "Authentication required."
    key = base64.urlsafe_b64encode(b"u:pw-123456").decode()
    assert auth.authenticate(address="a", query=f"x=1&apikey={key}") == Identity("u", "apikey")


def test_a_login_with_nothing_to_log_in_to_says_so(tmp_path: Path) -> None:
    with pytest.raises(AppError) as refused:
        _authenticator(tmp_path).login("u", "pw", address="a", remember=False)
    assert refused.value.status == 400
    assert refused.value.message.startswith("No credentials are configured, so the API is open")


def test_past_the_session_bound_the_soonest_to_expire_go(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("appliance.auth.MAX_SESSIONS", 2)
    now = [1_000_000.0]
    auth = Authenticator(make_settings(tmp_path, YTP_AUTH_USERNAME="u",
                                       YTP_AUTH_PASSWORD="pw-123456"), clock=lambda: now[0])
    # "~" sorts after every id a login makes: kept by an order of ids, dropped by expiry.
    auth.file.update(lambda old: with_changes(old, secret="k" * 64, sessions={
        "~": now[0] + 10, "-": now[0] + 1000}))
    session = auth.login("u", "pw-123456", address="a", remember=False)
    assert set(auth.state().sessions) == {"-", session.cookie.split(".")[1]}


def test_the_auth_file_is_written_for_people_to_read(tmp_path: Path) -> None:
    config = tmp_path / "config"
    set_password(config, "pw-123456")
    text = (config / "auth.json").read_text()
    assert text.endswith("}\n") and '\n  "password": "scrypt$' in text


def test_an_auth_file_whose_sessions_are_no_object_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    auth = _authenticator(tmp_path, YTP_AUTH_USERNAME="u", YTP_AUTH_PASSWORD="pw-123456")
    auth.file.folder.mkdir(parents=True)
    auth.file.path.write_text(json.dumps({"version": 1, "sessions": [1]}))
    assert auth.state().broken
    assert "sessions must be an object" in caplog.text
