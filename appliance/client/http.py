"""The HTTP API, one typed method per call the clients make.

Blocking (``requests``), thread-safe for the calls the TUI makes from its worker threads.
Every call has a timeout; an answer that is not 2xx raises :class:`ApiError` carrying the
error body's ``error`` text as the service wrote it, and no answer at all raises
:class:`Unreachable`. An answer is read up to :data:`MAX_ANSWER` bytes within
:data:`ANSWER_SECONDS`, and the typed calls check its shape: a service that answers junk (a
proxy's page, another version, a compromised box) is an :class:`ApiError` that says so, never
a crash of the TUI or a command that reads it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import HTTPError

from .connection import Connection

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
# The log stream sends a ping comment after 15 s of silence.
STREAM_READ_TIMEOUT = 40.0
# A history page of 500 items is about 1 MiB; an answer 32 times that is not one.
MAX_ANSWER = 32 * 2**20
ERROR_CHARS = 2000  # an error's text at most
# The read timeout is per read: a service trickling a byte a second would hold a call forever.
ANSWER_SECONDS = 120.0
READ_SIZE = 64 * 1024
# Pages of records read at most (of 1000 each): a service that says "there is a next page"
# for ever must not keep a client reading, and filling its memory, for ever.
MAX_PAGES = 100
BAD_ANSWER = "BAD_ANSWER"  # the code of an ApiError for an answer this client cannot read

Json = Any


class Unreachable(Exception):
    """No answer from the service (refused, timed out, name unknown)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason = url, reason


class ApiError(Exception):
    """The service answered with an error; ``message`` is its ``error`` text as is, up to
    :data:`ERROR_CHARS` characters (then cut with "…"): it is shown in one line, a toast or a
    dialog, and one of megabytes (up to :data:`MAX_ANSWER`) was laid out whole there, the TUI
    frozen for seconds a megabyte (the add screen's answers), or written whole to stderr."""

    def __init__(self, status: int, message: str, code: str = "") -> None:
        if len(message) > ERROR_CHARS:
            message = message[:ERROR_CHARS - 1] + "…"
        super().__init__(message)
        self.status, self.message, self.code = status, message, code

    @property
    def unauthorized(self) -> bool:
        return self.status == 401


@dataclasses.dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    page: int
    total: int
    total_pages: int


def _error_from(status: int, reason: str, content: bytes) -> ApiError:
    """The error an answer of ``status`` with the body ``content`` says."""
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested too deep to read
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return ApiError(status, body["error"], str(body.get("code") or ""))
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return ApiError(status, body["message"])
    return ApiError(status, f"HTTP {status} {reason}")


def _json(response: requests.Response, content: bytes) -> Json:
    """The answer's JSON; Python's ``NaN`` and ``Infinity``, which JSON has not, refused."""
    try:
        return json.loads(content, parse_constant=_not_json)
    except (ValueError, RecursionError):
        raise ApiError(response.status_code, "the answer is not JSON") from None


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def shaped(value: Any, shape: type, what: str) -> Any:
    """``value`` when it is a ``shape`` (``dict``: a JSON object, ``list``: an array); else
    :class:`ApiError` naming ``what`` of the service's answer is wrong."""
    if isinstance(value, shape) and not isinstance(value, bool):
        return value
    names = {dict: "an object", list: "an array", str: "a text", int: "a whole number"}
    raise ApiError(0, f"the service's answer is not one this client can read: {what} should "
                      f"be {names.get(shape, shape.__name__)}, not {_json_type(value)}",
                   BAD_ANSWER)


def objects(value: Any, what: str) -> list[dict[str, Any]]:
    """An array of objects (the items of a page, the answers of an add)."""
    for entry in shaped(value, list, what):
        shaped(entry, dict, f"each of {what}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "true/false", dict: "an object", list: "an array", str: "a text"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _page(body: Any, items: str, what: str) -> Page:
    body = shaped(body, dict, what)
    paging = shaped(body.get("pagination"), dict, f"{what}'s pagination")
    numbers = [shaped(paging.get(key), int, f"{what}'s pagination.{key}")
               for key in ("page", "total", "total_pages")]
    return Page(objects(body.get(items), f"{what}'s {items}"), *numbers)


def segment(value: object) -> str:
    """An id as one segment of a request's path: ids come from the service's answers, and
    one holding "/" or ".." must not name another endpoint."""
    return quoted(str(value), safe="")


def quoted(text: str, safe: str = "/") -> str:
    """``text`` percent-encoded (as UTF-8) for a request's path. A name from an answer may
    hold a lone surrogate (JSON carries one, UTF-8 cannot): it names nothing a request can
    reach, which is said, where quote()'s UnicodeEncodeError from a worker stopped the TUI."""
    try:
        return quote(text, safe=safe)
    except UnicodeEncodeError:
        raise ApiError(0, "a name that is no UTF-8 text (it holds a lone surrogate) cannot be "
                          "sent to the service", BAD_ANSWER) from None


class ApiClient:
    def __init__(self, connection: Connection, *, timeout: float = READ_TIMEOUT) -> None:
        self.connection = connection
        self.timeout = timeout
        self.session = requests.Session()
        # No proxy from the environment for a service that is usually on the LAN or loopback.
        self.session.trust_env = False
        # No compression (requests asks for gzip by default): a reverse proxy in front would
        # compress JSON, which the bounded reads below take as it comes, undecoded; and what
        # they bound must be what the answer takes in memory, not a gzip bomb's expansion.
        self.session.headers["Accept-Encoding"] = "identity"
        auth = connection.authorization()
        if auth:
            self.session.headers["Authorization"] = auth

    @property
    def url(self) -> str:
        return self.connection.url

    def close(self) -> None:
        self.session.close()

    # --- plumbing ------------------------------------------------------------------------

    def request(self, method: str, path: str, *, body: Json = None,
                params: dict[str, Any] | None = None) -> Json:
        response = self._send(method, path, body=body, params=params,
                              timeout=(CONNECT_TIMEOUT, self.timeout), stream=True)
        content = self._content(response)
        if response.status_code == 304 or not content:
            return None
        return _json(response, content)

    def _content(self, response: requests.Response) -> bytes:
        """The body, read as it comes (``read1``: a trickle still meets the deadline), at
        most :data:`MAX_ANSWER` bytes within :data:`ANSWER_SECONDS`."""
        deadline = time.monotonic() + ANSWER_SECONDS
        content = bytearray()
        try:
            while chunk := response.raw.read1(READ_SIZE):
                content += chunk
                if len(content) > MAX_ANSWER:
                    raise ApiError(response.status_code, f"the answer is larger than "
                                                         f"{MAX_ANSWER // 2**20} MiB", BAD_ANSWER)
                if time.monotonic() > deadline:
                    raise Unreachable(self.url, f"the answer took longer than "
                                                f"{ANSWER_SECONDS:g} s")
        except (requests.RequestException, OSError, HTTPError) as exc:
            raise Unreachable(self.url, _reason(exc)) from None
        finally:
            response.close()
        return bytes(content)

    def _send(self, method: str, path: str, *, body: Json = None,
              params: dict[str, Any] | None = None, timeout: Any,
              stream: bool = False, headers: dict[str, str] | None = None
              ) -> requests.Response:
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self.session.request(
                method, self.url + path, data=None if body is None else json.dumps(body),
                params={k: v for k, v in (params or {}).items() if v is not None},
                headers=headers, timeout=timeout, stream=stream, allow_redirects=False,
            )
        except requests.Timeout:
            raise Unreachable(self.url, "no answer in time") from None
        except (requests.RequestException, HTTPError) as exc:  # urllib3's: a host "a..b"
            raise Unreachable(self.url, _reason(exc)) from None
        if response.status_code >= 400:  # its body read as any other: bounded, then closed
            raise _error_from(response.status_code, response.reason, self._content(response))
        if response.is_redirect:
            # Not followed (the credentials would go along): a login page of a proxy in
            # front, or an address the API is not at, was read as an answer ("should be an
            # object, not null").
            location = response.headers.get("Location", "")
            response.close()
            raise ApiError(response.status_code, f"{self.url} answers with a redirect to "
                                                 f"{location!r}, not the API: give the "
                                                 f"address the API answers at", BAD_ANSWER)
        return response

    # --- service ---------------------------------------------------------------------------

    def configuration(self) -> dict[str, Any]:
        """Without the queue's items (``live`` has them): a queue of tens of thousands would
        pass the answer's bound. (A service older than ``queue_limit`` sends them all.)"""
        body = shaped(self.request("GET", "/api/system/configuration",
                                   params={"queue_limit": 0}), dict, "the configuration")
        for key, shape in (("app", dict), ("websocket", dict), ("presets", list),
                           ("folders", list), ("dl_fields", list)):
            if body.get(key) is not None:
                shaped(body[key], shape, f"the configuration's {key}")
        return body

    def websocket_url(self, configuration: dict[str, Any]) -> str:
        """``/ws`` on the host this client reaches the API by (the service's own idea of its
        host may not be reachable from here), on the port and path the service names."""
        ws = configuration.get("websocket") or {}
        port, path = ws.get("port"), ws.get("path") or "/ws"
        # Both go into the URL the credentials are sent to: a port of "80@elsewhere" or a
        # path of "@elsewhere/" would send them to another host.
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ApiError(0, f"the service names no usable websocket port: {port!r}",
                           BAD_ANSWER)
        if not isinstance(path, str) or not path.startswith("/"):
            raise ApiError(0, f"the service names no usable websocket path: {path!r}",
                           BAD_ANSWER)
        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{port}{quoted(path)}"

    def live(self, queue_limit: int | None = None) -> dict[str, Any]:
        """``{"history_count", "queue": {id: item}, "queue_count"}``: at most ``queue_limit``
        items (the running ones, then the newest waiting) when given."""
        live = shaped(self.request("GET", "/api/history/live",
                                   params={"queue_limit": queue_limit}), dict, "the live queue")
        for item in shaped(live.get("queue") or {}, dict, "the live queue's queue").values():
            shaped(item, dict, "each item of the live queue")
        for key in ("history_count", "queue_count"):
            if live.get(key) is not None:
                shaped(live[key], int, f"the live queue's {key}")
        return live

    def engine_stats(self) -> dict[str, Any]:
        return shaped(self.request("GET", "/api/engine/stats"), dict, "the engine's stats")

    def health(self) -> dict[str, Any]:
        return shaped(self.request("GET", "/api/health"), dict, "the health")

    def pause_all(self) -> str:
        return self._message("POST", "/api/system/pause")

    def resume_all(self) -> str:
        return self._message("POST", "/api/system/resume")

    def _message(self, method: str, path: str) -> str:
        """The ``message`` of an answer that is one."""
        answer = shaped(self.request(method, path), dict, f"the answer to {path}")
        return str(answer.get("message") or "done")

    # --- items -------------------------------------------------------------------------------

    def add(self, requests_: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Queue items; one answer per request (``status``, ``id``, ``removed_options``…)."""
        return objects(self.request("POST", "/api/history", body=requests_),
                       "the answers to an add")

    def item(self, item_id: str) -> dict[str, Any]:
        return shaped(self.request("GET", f"/api/history/{segment(item_id)}"), dict,
                      "the item")

    def start(self, ids: list[str]) -> dict[str, str]:
        return self.request("POST", "/api/history/start", body={"ids": ids})

    def pause(self, ids: list[str]) -> dict[str, str]:
        return self.request("POST", "/api/history/pause", body={"ids": ids})

    def cancel(self, ids: list[str]) -> dict[str, str]:
        return self.request("POST", "/api/history/cancel", body={"ids": ids})

    def delete(self, ids: list[str], *, kind: str, remove_file: bool) -> dict[str, str]:
        """Delete items of the ``queue`` (stopped first) or of the history (``done``)."""
        return self.request("DELETE", "/api/history",
                            body={"type": kind, "ids": ids, "remove_file": remove_file})

    def retry(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        """Queue a finished, failed or cancelled item again with what it was added with, then
        remove the old record (its file stays)."""
        again = {k: item[k] for k in ("url", "preset", "folder", "template", "cli")
                 if item.get(k)}
        answers = self.add([again])
        self.delete([item["id"]], kind="done", remove_file=False)
        return answers

    def archive(self, item_id: str) -> None:
        """Add the item to its preset's download archive."""
        self.request("POST", f"/api/history/{segment(item_id)}/archive")

    def unarchive(self, item_id: str) -> None:
        self.request("DELETE", f"/api/history/{segment(item_id)}/archive")

    def command(self, item: dict[str, Any]) -> str:
        """The yt-dlp command the service would run for the item (the console must be on)."""
        body = {k: item[k] for k in ("url", "preset", "folder", "template", "cli")
                if item.get(k)}
        answer = shaped(self.request("POST", "/api/yt-dlp/command", body=body), dict,
                        "the command")
        return str(answer.get("command") or "")

    def history(self, *, page: int = 1, per_page: int = 50, status: str | None = None,
                newest_first: bool = True, search: str | None = None) -> Page:
        """A page of the history; ``search``: words each in the title or the URL."""
        body = self.request("GET", "/api/history", params={
            "type": "done", "page": page, "per_page": per_page, "status": status or None,
            "order": "DESC" if newest_first else "ASC", "search": search or None,
        })
        return _page(body, "items", "the history")

    # --- records: presets, conditions, dl_fields, notifications --------------------------

    def records(self, kind: str) -> list[dict[str, Any]]:
        """Every record of ``presets``, ``conditions``, ``dl_fields`` or ``notifications``."""
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            body = self.request("GET", f"/api/{kind}", params={"page": page, "per_page": 1000})
            items = body.get("items") if isinstance(body, dict) else body
            for record in objects(items, f"the {kind}"):
                if record.get("id") is None:
                    raise ApiError(0, f"the service's answer is not one this client can read: "
                                      f"a record of the {kind} has no id", BAD_ANSWER)
                found.append(record)
            paging = body.get("pagination") if isinstance(body, dict) else None
            if not isinstance(paging, dict) or not paging.get("has_next"):
                return found
        raise ApiError(0, f"the service's answer is not one this client can read: the {kind} "
                          f"go on past {MAX_PAGES} pages", BAD_ANSWER)

    def create(self, kind: str, record: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/api/{kind}", body=record)

    def update(self, kind: str, record_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", f"/api/{kind}/{segment(record_id)}", body=changes)

    def remove(self, kind: str, record_id: int) -> dict[str, Any]:
        return self.request("DELETE", f"/api/{kind}/{segment(record_id)}")

    def test_targets(self) -> list[dict[str, Any]]:
        answer = shaped(self.request("POST", "/api/notifications/test", body={}), dict,
                        "the targets' test")
        return objects(answer.get("results"), "the targets' test results")

    def settings(self) -> dict[str, Any]:
        values = shaped(self.request("GET", "/api/settings"), dict, "the settings")
        if values.get("pinned") is not None:
            shaped(values["pinned"], dict, "the settings' pinned")
        return values

    def change_settings(self, changes: dict[str, Any]) -> None:
        self.request("PUT", "/api/settings", body=changes)

    # --- subscriptions (tasks) and their runs ----------------------------------------------

    def tasks(self) -> list[dict[str, Any]]:
        """Every task, with ``last_run_at``, ``last_status``, ``next_run_at``, ``running``…"""
        return self.records("tasks")

    def run_task(self, task_id: int) -> dict[str, Any]:
        """Start a run now; the execution as it starts (409 while one runs)."""
        return self.request("POST", f"/api/tasks/{segment(task_id)}/execute")

    def mark_task(self, task_id: int) -> str:
        """Record what the task's source lists now as seen: those entries are not queued."""
        return self._message("POST", f"/api/tasks/{segment(task_id)}/mark")

    def unmark_task(self, task_id: int) -> str:
        return self._message("DELETE", f"/api/tasks/{segment(task_id)}/mark")

    def inspect(self, url: str, preset: str = "") -> dict[str, Any]:
        """What a task for ``url`` would queue (its handler and entries), before adding it."""
        return shaped(self.request("POST", "/api/tasks/inspect",
                                   body={"url": url, **({"preset": preset} if preset else {})}),
                      dict, "the inspection")

    def executions(self, task_id: int, per_page: int = 1) -> list[dict[str, Any]]:
        """The task's runs, newest first."""
        body = shaped(self.request("GET", "/api/executions",
                                   params={"task_id": task_id, "per_page": per_page}),
                      dict, "the runs")
        return objects(body.get("items"), "the runs' items")

    def execution_log(self, execution_id: int) -> LogStream:
        """A run's log lines so far, then each new one, until the run ends."""
        response = self._send("GET", f"/api/executions/{segment(execution_id)}/log", stream=True,
                              timeout=(CONNECT_TIMEOUT, STREAM_READ_TIMEOUT),
                              headers={"Accept": "text/event-stream"})
        if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
            # The run has ended: the answer is the whole log at once.
            body = _json(response, self._content(response))
            lines = shaped(body, dict, "the run's log").get("lines") or []
            return LogStream.finished(self.url, shaped(lines, list, "the run's log lines"))
        return LogStream(self.url, response, event="log")

    # --- files ---------------------------------------------------------------------------

    def browse(self, path: str = "", *, page: int = 1, per_page: int = 200,
               sort_by: str = "name", descending: bool = False, search: str = ""
               ) -> tuple[str, Page]:
        """A page of a folder of the download folder: its path and its entries."""
        body = self.request("GET", "/api/file/browser/" + quoted(path.strip("/")), params={
            "page": page, "per_page": per_page, "sort_by": sort_by,
            "sort_order": "desc" if descending else "asc", "search": search or None})
        page = _page(body, "contents", "the folder")
        return shaped(body.get("path"), str, "the folder's path"), page

    def file_actions(self, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rename`` / ``delete`` / ``move`` / ``directory``: one result each, ``ok`` or
        ``error``."""
        return objects(self.request("POST", "/api/file/actions", body=actions),
                       "the actions' results")

    def file_info(self, path: str) -> dict[str, Any]:
        """``{"title", "ffprobe", "mimetype", "sidecar"}`` of a file."""
        return shaped(self.request("GET", "/api/file/info/" + quoted(path.strip("/"))), dict,
                      "the file's details")

    # --- logs ----------------------------------------------------------------------------

    def logs(self, *, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """A page of log records, newest first."""
        page = shaped(self.request("GET", "/api/logs", params={"offset": offset,
                                                                "limit": limit}),
                      dict, "the logs")
        objects(page.get("logs") or [], "the logs' records")
        return page

    def log_stream(self) -> LogStream:
        """Records as they are written, until closed. Holds one of the service's stream
        slots while open."""
        return LogStream(self.url, self._send("GET", "/api/logs/stream", stream=True,
                                              timeout=(CONNECT_TIMEOUT, STREAM_READ_TIMEOUT)))


class LogStream:
    """Iterate for ``{"id", "line", "datetime"}`` records (the ``event`` frames of a
    Server-Sent Events answer, until an ``end`` frame); ``close()`` from any thread ends the
    iteration."""

    def __init__(self, url: str, response: requests.Response | None,
                 event: str = "log_lines") -> None:
        self.url, self.response, self.event = url, response, event
        self.closed = False
        self.lines: list[dict[str, Any]] = []

    @classmethod
    def finished(cls, url: str, lines: list[Any]) -> LogStream:
        """A stream that has ended: only ``lines``."""
        stream = cls(url, None)
        stream.lines = [line if isinstance(line, dict) else {"line": str(line)}
                        for line in lines]
        return stream

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.response is None:
            yield from self.lines
            return
        try:
            yield from _sse_events(_lines(_arriving(self.response)), self.event)
        except (requests.RequestException, AttributeError, ValueError, RecursionError) as exc:
            # close() from another thread pulls the socket away mid-read.
            if not self.closed:
                raise Unreachable(self.url, str(exc)) from None

    def close(self) -> None:
        """Ends the stream without waiting: closing the response itself would wait for the
        reading thread's lock, i.e. for the next line or ping (up to 15 s). Shutting the
        socket down wakes that thread at once."""
        self.closed = True
        if self.response is None:
            return
        sock = getattr(getattr(self.response.raw, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        threading.Thread(target=self.response.close, name="log-stream-close",
                         daemon=True).start()


def _arriving(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives, at most READ_SIZE bytes at a time, never read whole. A chunked
    stream (the service's) comes chunk by chunk; one without chunks (through an HTTP/1.0
    proxy) in what each read finds: a read of READ_SIZE waited for 64 KiB of lines (minutes
    of a quiet log) before it gave any."""
    raw = response.raw
    if raw.chunked:
        yield from response.iter_content(READ_SIZE)
        return
    while data := raw.read1(READ_SIZE, decode_content=True):
        yield data


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """The lines of a stream, each at most :data:`MAX_ANSWER` bytes (a line that never ends
    would fill the memory)."""
    pending = bytearray()
    for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            pending += chunk[start:end]
            yield pending.removesuffix(b"\r").decode(errors="replace")
            pending.clear()
            start = end + 1
        pending += chunk[start:]
        if len(pending) > MAX_ANSWER:
            raise ValueError(f"a line of the stream is longer than {MAX_ANSWER // 2**20} MiB")
    if pending:
        yield pending.decode(errors="replace")


def _sse_events(lines: Iterator[str], wanted: str) -> Iterator[dict[str, Any]]:
    event, data = "", []
    size = 0
    for line in lines:
        if line == "":
            if event == "end":
                return
            if event == wanted and data:
                payload = json.loads("\n".join(data))
                # A record is an object; anything else in the stream is not one.
                yield from (p for p in (payload if isinstance(payload, list) else [payload])
                            if isinstance(p, dict))
            event, data, size = "", [], 0
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
            size += len(data[-1])
            if size > MAX_ANSWER:
                raise ValueError(f"an event of the stream is longer than "
                                 f"{MAX_ANSWER // 2**20} MiB")


def _reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "No route to host",
                  "timed out", "Temporary failure in name resolution"):
        if known in text:
            return known.lower()
    return text
