"""Authentication over HTTP: the middleware that guards every route, and ``/api/auth/…``
(login, logout, websocket and file tickets). The decisions themselves are
:mod:`appliance.auth`'s."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import falcon

from .. import errors, kinds
from ..auth import COOKIE_NAME, USERNAME, Authenticator, sessions
from ..files import paths
from ..files.names import api_form
from ..runtime import Runtime
from .local_files import as_sent
from .requests import json_object, query_bool
from .schemas import error, json_body, json_response, query

# The paths that answer without credentials (after the trailing slash is stripped; an entry
# ending in "/*" is a prefix): health checks, the login itself, logout (it only ends the
# session its own cookie names) and the API docs with their bundled assets. CORS preflight
# (OPTIONS) is open too, on every path.
OPEN_PATHS = frozenset({
    "/api/ping",
    "/api/health",
    "/api/auth/login",
    "/api/auth/logout",
    "/api/auth/status",
    "/api",
    "/api/openapi.json",
    "/api/docs/assets/*",
})
_OPEN_EXACT = frozenset(p for p in OPEN_PATHS if not p.endswith("/*"))
_OPEN_PREFIXES = tuple(p[:-1] for p in OPEN_PATHS if p.endswith("/*"))
# The routes a file ticket opens, each naming the file (its path as the route has it): the
# ranged download and the HLS playlists and segments of the player (not its subtitles: those
# are other files).
FILE_TICKET_ROUTE = "/api/download/"
FILE_TICKET_ROUTES = (
    re.compile(r"/api/download/(?P<file>.+)"),
    re.compile(r"/api/player/playlist/(?P<file>.+)\.m3u8"),
    re.compile(r"/api/player/m3u8/video/(?P<file>.+)\.m3u8"),
    re.compile(r"/api/player/segments/[0-9]+/(?P<file>.+)\.ts"),
)


def is_open(path: str) -> bool:
    """True when ``path`` is served without credentials (see :data:`OPEN_PATHS`)."""
    return path in _OPEN_EXACT or path.startswith(_OPEN_PREFIXES)


def _client_address(auth: Authenticator, req: falcon.Request) -> str:
    """The client's address (``X-Forwarded-For`` is read only from a trusted proxy)."""
    return auth.client_address(req.remote_addr, req.get_header("X-Forwarded-For"))


def final_path(root: Path, requested: str) -> str:
    """The normal path, relative to the download folder, that ``requested`` leads to with
    symlinks followed: what a file ticket is issued for and checked against. 400 for a
    refused form ('..', control characters), 403 when it leads outside the folder."""
    return paths.relative(root, paths.resolve(root, requested))


class Authenticate:
    """Middleware: every request outside :data:`OPEN_PATHS` must authenticate (before
    routing, so an unknown path is 401 for a stranger and 404 for a user). A request for a
    file on one of :data:`FILE_TICKET_ROUTES` may instead carry a ``?ticket=`` issued for
    that file."""

    def __init__(self, authenticator: Authenticator, download_root: Callable[[], Path]) -> None:
        self.auth = authenticator
        self.download_root = download_root

    def _file_scope(self, req: falcon.Request) -> Callable[[], str] | None:
        sent = as_sent(req, req.path, "")  # a name that is not UTF-8: its bytes
        for route in FILE_TICKET_ROUTES:
            if match := route.fullmatch(sent):
                return lambda: final_path(self.download_root(), match["file"])
        return None

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Where the answer's links and redirects point: the host the client asked for, or the
        # one a reverse proxy it may believe says it asked for.
        req.context.prefix = (req.forwarded_prefix
                              if self.auth.proxies.may_name_the_host(req.remote_addr)
                              else req.prefix)
        self.auth.check_host(req.get_header("Host"))
        # Who the client is, as the throttle knows it: also whose share of the transfers.
        req.context.client = _client_address(self.auth, req)
        if req.method == "OPTIONS" or is_open(req.path):
            req.context.identity = None
            return
        req.context.identity = self.auth.authenticate(
            address=req.context.client,
            authorization=req.get_header("Authorization"),
            query=req.params,
            cookie=req.get_header("Cookie"),
            file_scope=self._file_scope(req),
        )


class Login:
    """``POST /api/auth/login[?remember=true]`` with ``{"username", "password"}``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.auth = runtime.auth

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        remember = query_bool(req, "remember")
        body = json_object(req, self.runtime.settings.max_body)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise errors.invalid("username and password are required and must be strings.")
        address = _client_address(self.auth, req)
        session = self.auth.login(username, password, address=address, remember=remember)
        # Strict, not Lax: GET /api/history/add changes state, and a Lax cookie would ride
        # along on a link from another site.
        resp.set_cookie(
            COOKIE_NAME, session.cookie, max_age=session.max_age, path="/",
            secure=req.scheme == "https", http_only=True, same_site="Strict",
        )
        resp.media = {
            "status": "success",
            "message": "Logged in.",
            "expires": session.expires,
            "remember": remember,
            "user": {"username": username},  # what YTPTube's login answers with
        }


class Status:
    """``GET /api/auth/status`` (always open): YTPTube's clients ask it before any page.
    ``setup_required`` is always false: credentials are set on the box (environment or
    ``appliance web passwd``), never through the API."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.auth = runtime.auth

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = None
        if self.auth.enabled:
            with contextlib.suppress(errors.AppError):  # not signed in (or throttled)
                identity = self.auth.authenticate(
                    address=_client_address(self.auth, req),
                    authorization=req.get_header("Authorization"),
                    query=req.params, cookie=req.get_header("Cookie"))
                # A session or ticket names no user: the service has one (the login's).
                name = identity.user if identity.method not in {"session", "ticket"} else (
                    self.runtime.settings.auth_username or USERNAME)
                user = {"username": name}
        resp.media = {"disabled": not self.auth.enabled, "setup_required": False,
                      "authenticated": user is not None, "user": user}


class Logout:
    """``POST /api/auth/logout``: ends the cookie's session and clears the cookie."""

    def __init__(self, runtime: Runtime) -> None:
        self.auth = runtime.auth

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.auth.logout(req.get_header("Cookie"))
        resp.unset_cookie(COOKIE_NAME, path="/", same_site="Strict")  # expires now: dropped
        resp.media = {"status": "success", "message": "Logged out."}


class WsTicket:
    """``POST /api/auth/ws-ticket`` (authenticated): a single-use ``?ticket=`` for the
    websocket handshake, for clients that cannot set headers there (browsers)."""

    def __init__(self, runtime: Runtime) -> None:
        self.auth = runtime.auth

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        ticket, expires = self.auth.issue_ticket()
        resp.media = {"ticket": ticket, "expires": int(expires)}


class FileTicket:
    """``POST /api/auth/file-ticket`` (authenticated) with ``{"path"}``: a ``?ticket=`` that
    opens that one file of the download folder (ranges and all) for a few hours, for players
    that cannot send credentials (cast devices, Home Assistant's apps)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.auth = runtime.auth

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        requested = json_object(req, self.runtime.settings.max_body).get("path")
        if not isinstance(requested, str) or not requested.strip("/ "):
            raise errors.invalid("path is required: a file of the download folder.")
        root = self.runtime.files.root
        rel = final_path(root, requested)
        if not os.path.isfile(root / rel):  # False, not an error, for a name too long
            raise errors.not_found(f"File '{requested}' does not exist.")
        ticket, expires = self.auth.issue_file_ticket(rel)
        url = quote(os.fsencode(rel))  # by its bytes, as the player's URLs (files.names)
        resp.media = {"ticket": ticket, "expires": int(expires), "path": api_form(rel),
                      "mime": kinds.mime_type(rel),
                      "url": f"{FILE_TICKET_ROUTE}{url}?ticket={ticket}",
                      "playlist": f"/api/player/playlist/{url}.m3u8?ticket={ticket}"}


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/auth/login", Login(runtime))
    app.add_route("/api/auth/logout", Logout(runtime))
    app.add_route("/api/auth/status", Status(runtime))
    app.add_route("/api/auth/ws-ticket", WsTicket(runtime))
    app.add_route("/api/auth/file-ticket", FileTicket(runtime))


# --- OpenAPI ------------------------------------------------------------------------------

_SET_COOKIE = {"Set-Cookie": {
    "description": f"The `{COOKIE_NAME}` cookie (HttpOnly, SameSite=Strict, Path=/).",
    "schema": {"type": "string"},
}}
_RETRY_AFTER = {"Retry-After": {
    "description": "Seconds until this address may try again (1 when the server was busy).",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}}
_status = {"type": "object", "required": ["status", "message"],
           "properties": {"status": {"const": "success"}, "message": {"type": "string"}}}


def _unauthorized(description: str) -> dict[str, Any]:
    response = error(description)
    response["headers"] = {"WWW-Authenticate": {
        "description": 'Basic realm="appliance"', "schema": {"type": "string"}}}
    return response


def _throttled() -> dict[str, Any]:
    response = error("Too many failed attempts from this address, or (for a password from an "
                     "address that is neither on the LAN nor known) from many addresses, or "
                     "every password-hashing slot is busy; wait Retry-After seconds.")
    response["headers"] = dict(_RETRY_AFTER)
    return response


_USER = {"type": "object", "required": ["username"],
         "properties": {"username": {"type": "string"}}}

PATHS: dict[str, dict[str, Any]] = {
    "/api/auth/status": {"get": {
        "tags": ["auth"], "operationId": "authStatus",
        "summary": "Whether auth is on and who the caller is (always open; YTPTube's)",
        "responses": {"200": json_response("The caller's state.", {
            "type": "object",
            "required": ["disabled", "setup_required", "authenticated", "user"],
            "properties": {
                "disabled": {"type": "boolean", "description": "No credentials are set."},
                "setup_required": {"const": False},
                "authenticated": {"type": "boolean"},
                "user": {"anyOf": [_USER, {"type": "null"}]},
            }})},
    }},
    "/api/auth/login": {"post": {
        "tags": ["auth"], "operationId": "login",
        "summary": "Log in (also /api/auth/login/): sets the session cookie (always open)",
        "description": (
            "Either credential: user `appliance` (or YTP_AUTH_USERNAME) with the password set "
            "by `appliance web passwd`, or YTP_AUTH_USERNAME/YTP_AUTH_PASSWORD. The cookie is "
            "signed, HttpOnly and SameSite=Strict; without `remember` it is a browser-session "
            f"cookie honoured for at most {sessions.BROWSER_SECONDS // 3600} hours, with it a "
            f"persistent cookie for {sessions.REMEMBER_SECONDS // 86400} days. After 5 failed "
            "attempts from one address, further attempts are refused (429) for a growing "
            "delay."
        ),
        "parameters": [query("remember", {"type": "boolean", "default": False},
                             "A persistent cookie (Max-Age) instead of a browser-session one.")],
        "requestBody": json_body({
            "type": "object", "required": ["username", "password"],
            "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
        }),
        "responses": {
            "200": json_response("Logged in; the cookie is set.", {
                **_status, "required": ["status", "message", "expires", "remember"],
                "properties": {**_status["properties"],
                               "expires": {"type": "integer",
                                           "description": "Session end, epoch seconds."},
                               "remember": {"type": "boolean"},
                               "user": _USER},
            }, headers=dict(_SET_COOKIE)),
            "400": error("Missing username or password, a bad `remember`, or no credentials "
                         "are configured (the API is open)."),
            "401": _unauthorized("Wrong username or password."),
            "429": _throttled(),
            "503": error("The session could not be stored."),
        },
    }},
    "/api/auth/logout": {"post": {
        "tags": ["auth"], "operationId": "logout",
        "summary": "End the cookie's session and clear the cookie (always open)",
        "responses": {
            "200": json_response("Logged out (also when there was no session).", _status,
                                 headers=dict(_SET_COOKIE)),
            "503": error("The session table could not be written."),
        },
    }},
    "/api/auth/ws-ticket": {"post": {
        "tags": ["auth"], "operationId": "wsTicket",
        "summary": "A single-use websocket ticket (?ticket=), valid for a minute",
        "description": "For clients that cannot send headers on a websocket (browsers): "
                       "connect to `/ws?ticket=<ticket>` (or `/api/ws`) before `expires`.",
        "responses": {
            "200": json_response("The ticket.", {
                "type": "object", "required": ["ticket", "expires"],
                "properties": {"ticket": {"type": "string"},
                               "expires": {"type": "integer",
                                           "description": "Epoch seconds."}},
            }),
            "401": _unauthorized("Not authenticated."),
            "429": _throttled(),
        },
    }},
    "/api/auth/file-ticket": {"post": {
        "tags": ["auth"], "operationId": "fileTicket",
        "summary": "A ticket that opens one file for "
                   f"{sessions.FILE_TICKET_SECONDS // 3600} hours (?ticket=)",
        "description": (
            "For players that cannot send credentials (cast devices, Home Assistant's apps): "
            "`url` (`/api/download/<path>?ticket=<ticket>`) serves the file, ranges and "
            "all, to anyone until `expires`, and `playlist` its HLS form (the playlists and "
            "segments carry the ticket on; no subtitle tracks: those are other files); "
            "nothing else. The ticket names the file's "
            "final path (symlinks followed); a request for another file with it is 403, an "
            "unknown or expired ticket 401. Tickets are kept in memory: a restart of the "
            "service ends them."),
        "requestBody": json_body({
            "type": "object", "required": ["path"],
            "properties": {"path": {"type": "string",
                                    "description": "Relative to the download folder."}},
        }),
        "responses": {
            "200": json_response("The ticket.", {
                "type": "object",
                "required": ["ticket", "expires", "path", "mime", "url", "playlist"],
                "properties": {
                    "ticket": {"type": "string"},
                    "expires": {"type": "integer", "description": "Epoch seconds."},
                    "path": {"type": "string", "description": "The file's normal path."},
                    "mime": {"type": "string"},
                    "url": {"type": "string",
                            "description": "Relative to the service's root."},
                    "playlist": {"type": "string",
                                 "description": "The HLS master playlist, relative too."}},
            }),
            "400": error("No path, or a refused one ('..', control characters)."),
            "401": _unauthorized("Not authenticated."),
            "403": error("The path leads outside the download folder."),
            "404": error("No such file."),
            "429": _throttled(),
        },
    }},
}
