"""A thin async client for the appliance's HTTP API and websocket (its wire protocol only).

It uses the aiohttp session it is given (Home Assistant's shared one) and knows nothing of
Home Assistant, so it could be published as a library of its own.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)
# The websocket's opening handshake (the session's own bound is 5 minutes: a service whose
# websocket port takes the connection and never answers held the setup, and each reconnect,
# that long).
WS_CONNECT_TIMEOUT = 30.0
# The event stream is pinged this often and given up when half of it passes without an
# answer: a service gone without a word (its power cut, a cable pulled) sends no close, and
# the entities would go on showing it as it was.
WS_HEARTBEAT = 30.0
TASK_PAGE = 1000
# A service that says "there is a next page" for ever must not keep Home Assistant reading.
MAX_TASK_PAGES = 100
BROWSE_PAGE = 1000
# The largest answer read (a queue of thousands of items is a few MiB): a broken or hostile
# service cannot fill Home Assistant's memory.
MAX_ANSWER = 32 * 1024 * 1024
# An answer parsed on the event loop (a larger one in the executor).
MAX_ON_LOOP = 256 * 1024
# The most of a service's error text shown to the user (it reaches forms and log lines).
MAX_ERROR_TEXT = 300
# A base path (an appliance behind a reverse proxy that keeps a prefix, "/ytp/") is plain
# path segments: no scheme, host, "..", query, escape or control character can ride in it.
BASE_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,63}")
MAX_BASE_PATH = 255
# The most levels of lists and objects kept of a service's value (the service's own bodies
# nest 64 at most, its answers a few): Python's parser reads thousands, and every copy,
# redaction, text or JSON of such a value (Home Assistant's writer stops at 255) recursed.
MAX_DEPTH = 32


class ApplianceError(Exception):
    """The service could not do what was asked."""


class CannotConnect(ApplianceError):
    """The service is unreachable, or answered with a server error."""


class InvalidAuth(ApplianceError):
    """The credentials are refused (or missing while the service requires them)."""


class BadAnswer(ApplianceError):
    """The service answered what the protocol does not allow (not JSON, the wrong shape, a
    field missing): not an appliance, or a broken one."""


class OtherAppliance(ApplianceError):
    """The address answers as another appliance than the entry's (another instance id):
    nothing that needs the credentials is sent there."""

    def __init__(self, found: str) -> None:
        super().__init__(f"the address answers as appliance {found}")
        self.found = found


class RequestRefused(ApplianceError):
    """The service refused the request (4xx): its ``error`` text says why."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class Credentials:
    token: str | None = None
    username: str | None = None
    password: str | None = None

    def headers(self) -> dict[str, str]:
        # A line break would end the header (and start another); Basic auth has no room for
        # a ":" in the user name: such credentials are refused here, not sent.
        if any(c in (value or "") for value in (self.token, self.username, self.password)
               for c in "\r\n\0") or ":" in (self.username or ""):
            raise InvalidAuth("the credentials hold a line break, or the user name a ':'")
        if self.token:
            return {"Authorization": f"Token {self.token}"}
        if self.username and self.password:
            # UTF-8, as the service reads them (aiohttp's default, Latin-1, sent "ü" as
            # another byte and could not send "€" at all)
            return {"Authorization": aiohttp.BasicAuth(self.username, self.password,
                                                       encoding="utf-8").encode()}
        return {}


def unwrap_event(message: Any) -> tuple[str, Any] | None:
    """``(event, payload)`` of a ``/ws`` frame, or None when it is not an event.

    Two envelopes reach a client: ``{"event", "data": payload}`` and YTPTube's
    ``{"event", "data": {id, created_at, event, title, message, data: payload}}``.
    """
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        return None
    data = message.get("data")
    if (isinstance(data, dict) and isinstance(data.get("event"), str)
            and "created_at" in data and "data" in data):
        data = data["data"]
    return message["event"], data


def base_path(value: Any) -> str | None:
    """A base path as every request's prefix ("/ytp" for "/ytp/", "" for none or "/"), or
    None when it is not plain path segments (it is put between the entry's address and each
    request's path: it may choose a folder of that address, never another host or scheme)."""
    if value is None or value == "" or value == "/":
        return ""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > MAX_BASE_PATH:
        return None
    segments = value[1:].removesuffix("/").split("/")  # "//host" and "a//b" have an empty one
    if not all(BASE_PATH_SEGMENT.fullmatch(segment) for segment in segments):
        return None
    return "/" + "/".join(segments)


class ApplianceClient:
    def __init__(self, session: aiohttp.ClientSession, host: str, port: int,
                 credentials: Credentials, prefix: str = "") -> None:
        """``prefix``: a base path as :func:`base_path` gives it."""
        self.session = session
        self.host = host
        self.port = port
        self.credentials = credentials
        self.prefix = prefix

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.prefix}"

    async def request(self, method: str, path: str, *, json: Any = None, auth: bool = True,
                      expect: type[dict[str, Any]] | type[list[Any]] = dict) -> Any:
        """The service's JSON answer, which must be an ``expect`` (an object by default)."""
        # Uncompressed, and never inflated here: aiohttp inflates what it reads whole, before
        # MAX_ANSWER could look (a hostile answer of 500 KB took 267 MiB at once).
        headers = {**(self.credentials.headers() if auth else {}),
                   "Accept-Encoding": "identity"}
        try:
            async with self.session.request(
                method, self.base_url + path, json=json, headers=headers,
                timeout=REQUEST_TIMEOUT, allow_redirects=False, auto_decompress=False,
            ) as response:
                if 300 <= response.status < 400:
                    # The appliance never redirects: followed, a redirect would make Home
                    # Assistant fetch whatever address the answer names.
                    raise BadAnswer(f"{path.partition('?')[0]}: HTTP {response.status} to "
                                    f"{_shorten(response.headers.get('Location'))}")
                if response.status == 401:
                    raise InvalidAuth(await _error_text(response))
                if response.status >= 500:
                    raise CannotConnect(f"HTTP {response.status}: {await _error_text(response)}")
                if response.status >= 400:
                    body = await _json_or_none(response)
                    text = _shorten(body.get("error")) if isinstance(body, dict) else None
                    raise RequestRefused(response.status, text or f"HTTP {response.status}",
                                         body.get("code") if isinstance(body, dict) else None)
                answer = await _read_json(response)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise CannotConnect(f"{self.base_url}: {_why(err)}") from err
        if not isinstance(answer, expect):
            raise BadAnswer(f"{path.partition('?')[0]}: expected a JSON "
                            f"{'object' if expect is dict else 'list'}, got "
                            f"{type(answer).__name__}")
        return answer

    async def health(self) -> dict[str, Any]:
        """Open to anyone: the instance id, version, free disk."""
        result: dict[str, Any] = await self.request("GET", "/api/health", auth=False)
        if not valid_instance_id(result.get("instance_id")):
            raise BadAnswer("/api/health: no instance id")
        return result

    async def configuration(self, queue_fields: Sequence[str] = ()) -> dict[str, Any]:
        """Needs the credentials: the first call that proves them. The queue's items carry
        only ``queue_fields`` (and their id), none without: a queue of tens of thousands of
        whole items would pass ``MAX_ANSWER``. (A service older than these parameters sends
        the whole queue.)"""
        query = f"queue_fields={','.join(queue_fields)}" if queue_fields else "queue_limit=0"
        result: dict[str, Any] = await self.request("GET", f"/api/system/configuration?{query}")
        return result

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/api/engine/stats")
        return result

    async def last_finished(self) -> dict[str, Any] | None:
        page = await self.request(
            "GET", "/api/history?type=done&status=finished&per_page=1&order=DESC")
        items = records(page.get("items"))
        return items[0] if items else None

    async def item(self, item_id: str) -> dict[str, Any]:
        # Quoted whole: an id such as "../system/x" must not name another endpoint.
        result: dict[str, Any] = await self.request("GET",
                                                    f"/api/history/{quote(item_id, safe='')}")
        return result

    async def add(self, payloads: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return records(await self.request("POST", "/api/history", json=list(payloads),
                                          expect=list))

    async def cancel(self, ids: list[str]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", "/api/history/cancel",
                                                    json={"ids": ids})
        return result

    async def retry(self, item_id: str) -> str:
        """Queue a finished download again with its whole request (cookies included, which
        no client is shown) and remove the old entry, in one step; the new download's id."""
        result = await self.request("POST",
                                    f"/api/downloads/{quote(item_id, safe='')}/retry")
        if not isinstance(new_id := result.get("id"), str):
            raise BadAnswer("/api/downloads/…/retry: no id")
        return new_id

    async def set_paused(self, paused: bool) -> None:
        try:
            await self.request("POST", "/api/system/pause" if paused else "/api/system/resume")
        except RequestRefused as err:
            if err.status != 406:  # 406: already in that state, which is what was asked
                raise

    async def tasks(self) -> list[dict[str, Any]]:
        """Every scheduled task (subscription), read a page of 1000 at a time; none from a
        service older than its tasks API."""
        tasks: list[dict[str, Any]] = []
        for page in range(1, MAX_TASK_PAGES + 1):
            try:
                body = await self.request("GET",
                                          f"/api/tasks?page={page}&per_page={TASK_PAGE}")
            except RequestRefused as err:
                if err.status == 404 and page == 1:
                    return []
                raise
            items = records(body.get("items"))
            tasks.extend(items)
            if not items or not mapping(body.get("pagination")).get("has_next"):
                return tasks
        raise BadAnswer(f"/api/tasks: more than {MAX_TASK_PAGES} pages")

    async def set_task_enabled(self, task_id: int, enabled: bool) -> dict[str, Any]:
        """The task as it is now."""
        result: dict[str, Any] = await self.request("PATCH", f"/api/tasks/{int(task_id)}",
                                                    json={"enabled": enabled})
        return result

    async def run_task(self, task_id: int) -> dict[str, Any]:
        """Start a run now; the execution as it starts (409 while the task runs)."""
        result: dict[str, Any] = await self.request("POST",
                                                    f"/api/tasks/{int(task_id)}/execute")
        return result

    async def browse(self, folder: str) -> dict[str, Any]:
        """A folder of the download folder: folders first, then the newest files
        (``BROWSE_PAGE`` entries at most)."""
        result: dict[str, Any] = await self.request(
            "GET", f"/api/file/browser/{quote(folder.strip('/'))}"
                   f"?per_page={BROWSE_PAGE}&sort_by=date&sort_order=desc")
        return result

    async def file_ticket(self, path: str) -> dict[str, Any]:
        """A ticket that opens one file for a few hours without credentials, and the URLs
        (absolute) that serve the file with it: ``url`` (ranges and all), ``playlist`` (HLS)."""
        result: dict[str, Any] = await self.request("POST", "/api/auth/file-ticket",
                                                    json={"path": path})
        for key in ("url", "playlist"):
            # A path on the service itself: never "//host/…" or "@host/…", which would send
            # the player somewhere else.
            value = result.get(key)
            if not isinstance(value, str) or not value.startswith("/") \
                    or value.startswith("//"):
                raise BadAnswer(f"/api/auth/file-ticket: no {key} path")
            result[key] = self.base_url + value
        return result

    async def check_updates(self) -> dict[str, Any] | None:
        """The service's release check, or None when the service has it turned off."""
        try:
            result: dict[str, Any] = await self.request("POST", "/api/system/check-updates")
        except RequestRefused:
            return None
        return result

    async def ytdlp(self) -> dict[str, Any] | None:
        """yt-dlp's installed and newest release and the last update (never an error on the
        service's side: an unreachable index is "unknown"); None from a service without it."""
        try:
            result: dict[str, Any] = await self.request("GET", "/api/system/ytdlp")
        except RequestRefused:
            return None
        return result

    async def update_ytdlp(self) -> None:
        """Start the service's yt-dlp update (409 while one runs)."""
        await self.request("POST", "/api/system/ytdlp/update")

    async def connect(self, configuration: Mapping[str, Any],
                      session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        """The ``/ws`` event stream, on the port the service's configuration names, opened
        on ``session``: one that follows no redirect (:func:`refusing_redirects`)."""
        websocket = mapping(configuration.get("websocket"))
        port = websocket.get("port") or self.port + 1
        path = websocket.get("path") or "/ws"
        # A path as a base path is (plain segments: the service's is "/ws" under its base
        # path), and a port that is a number, not JSON's true: anything else is no address
        # the service gives, and was sent as it came (a request line of megabytes).
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536 \
                or not base_path(path):
            raise BadAnswer(f"/api/system/configuration: no websocket at port "
                            f"{_shorten(repr(port))}, path {_shorten(repr(path))}")
        path = base_path(path)
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            async with asyncio.timeout(WS_CONNECT_TIMEOUT):
                return await session.ws_connect(
                    f"ws://{host}:{port}{path}", headers=self.credentials.headers(),
                    heartbeat=WS_HEARTBEAT, timeout=aiohttp.ClientWSTimeout(ws_close=10),
                )
        except aiohttp.WSServerHandshakeError as err:
            if err.status == 401:
                raise InvalidAuth(err.message) from err
            raise CannotConnect(f"websocket: HTTP {err.status}") from err
        except (aiohttp.ClientError, TimeoutError) as err:
            raise CannotConnect(f"websocket: {_why(err)}") from err


def refusing_redirects() -> aiohttp.TraceConfig:
    """A session's trace that stops a request a redirect answers (:class:`BadAnswer`)
    instead of following it. aiohttp's ``ws_connect`` has no switch for that: the opening
    handshake followed wherever a 30x of the websocket's port pointed (a LAN device that
    took the appliance's address sent Home Assistant to any address; only the credentials
    stayed behind when the host changed)."""

    async def refuse(_session: aiohttp.ClientSession, _context: Any,
                     params: aiohttp.TraceRequestRedirectParams) -> None:
        answer = params.response
        answer.close()
        raise BadAnswer(f"websocket: HTTP {answer.status} to "
                        f"{_shorten(answer.headers.get('Location'))}, not followed "
                        f"(the appliance never redirects)")

    trace = aiohttp.TraceConfig()
    # (aiosignal's stubs type a signal's receivers as taking a receiver)
    trace.on_request_redirect.append(refuse)  # type: ignore[arg-type]
    return trace


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: a field of an answer that has
    the wrong type is treated as absent."""
    return value if isinstance(value, dict) else {}


def records(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list (anything else in it skipped); none when it is no list."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def valid_instance_id(value: Any) -> bool:
    """An instance id as the service makes them (hex), never markup or a path: it becomes
    the entry's unique id and part of every device and entity id. Never a "_" either: an
    appliance's subscription devices are "<its id>_task_<n>", and an appliance announcing
    "<another's id>_task_1" would have taken over (renamed, re-linked) that device."""
    return isinstance(value, str) and 0 < len(value) <= 64 \
        and all(c.isascii() and (c.isalnum() or c == "-") for c in value)


def capped(value: Any, limit: int) -> Any:
    """A value of the service's as a name, a state, an attribute or an event's data takes it:
    a text (an object or a list: as text) cut to ``limit`` characters with "…"; null,
    true/false and a number JSON writes as such, as they are."""
    if value is None or isinstance(value, bool) \
            or (isinstance(value, int | float) and abs(value) < 2**53):
        return value
    text = value if isinstance(value, str) else str(shallow(value))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def shallow(value: Any, depth: int = MAX_DEPTH) -> Any:
    """A value of the service's as Home Assistant keeps or hands it on (an item, a release,
    an action's answer): what lies deeper than ``depth`` levels of lists and objects is "…"."""
    if not isinstance(value, dict | list):
        return value
    if depth <= 0:
        return "…"
    if isinstance(value, dict):
        return {key: shallow(item, depth - 1) for key, item in value.items()}
    return [shallow(item, depth - 1) for item in value]


def _why(err: BaseException) -> str:
    """A failure to connect in words: a timeout has none of its own (an exception is always
    true, so ``err or`` its type's name gave an empty reason: "Cannot reach …: ")."""
    return str(err) or ("no answer in time" if isinstance(err, TimeoutError)
                        else type(err).__name__)


def _shorten(value: Any) -> str | None:
    return str(capped(value, MAX_ERROR_TEXT)) if value else None


async def _read_json(response: aiohttp.ClientResponse) -> Any:
    """The answer's JSON, read to ``MAX_ANSWER`` bytes at most."""
    if (encoding := response.headers.get("Content-Encoding", "identity")) != "identity":
        raise BadAnswer(f"{response.url.path}: an answer encoded as "
                        f"{_shorten(encoding)}, which was not asked for")
    if (response.content_length or 0) > MAX_ANSWER:
        raise BadAnswer(f"an answer of {response.content_length} bytes")
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_ANSWER:
            raise BadAnswer(f"an answer of more than {MAX_ANSWER} bytes")
    try:
        return await decode(body)
    except (ValueError, RecursionError) as err:  # RecursionError: "[[[[…" nested too deep
        raise BadAnswer(f"{response.url.path}: not JSON ({type(err).__name__})") from err


async def decode(text: bytes | bytearray | str) -> Any:
    """JSON text (an answer, an event of the stream) as Python; ValueError or RecursionError
    when it is none. Megabytes take a second on a small box: read off Home Assistant's loop,
    everything else it runs goes on meanwhile."""
    if len(text) <= MAX_ON_LOOP:
        return json.loads(text)
    return await asyncio.get_running_loop().run_in_executor(None, json.loads, text)


async def _json_or_none(response: aiohttp.ClientResponse) -> Any:
    try:
        return await _read_json(response)
    except BadAnswer:
        return None


async def _error_text(response: aiohttp.ClientResponse) -> str:
    body = await _json_or_none(response)
    text = _shorten(body.get("error")) if isinstance(body, dict) else None
    return text or f"HTTP {response.status}"
