"""``/api/logs`` (pages of the log file, newest first) and ``/api/logs/stream`` (SSE)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import falcon

from .. import errors
from ..logs import LogFileHandler, file_handler_for, line_id, log_file_path, read_entries
from ..runtime import Runtime
from . import sse
from .schemas import error, json_response, query

DEFAULT_LIMIT = 100
MAX_LIMIT = 150
# Far more entries than five 5 MB files hold; a larger offset is a client's mistake (and past
# 2**63 it could not even be written back in the JSON answer).
MAX_OFFSET = 2**31 - 1


def _int_param(req: falcon.Request, name: str, default: int, low: int, high: int,
               *, clamp: bool = False) -> int:
    """A whole-number query parameter; out of range is a 400, or with ``clamp`` the nearest
    bound (the contract's "limit (max 150)": a bigger limit gets 150, as YTPTube does)."""
    raw = req.get_param(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise errors.invalid(f"{name} must be a whole number.") from None
    if clamp:
        return min(max(value, low), high)
    if not low <= value <= high:
        raise errors.invalid(f"{name} must be between {low} and {high}.")
    return value


def _log_file(runtime: Runtime) -> Path:
    if not runtime.settings.file_logging:
        raise errors.not_found("File logging is not enabled.")
    return log_file_path(runtime.settings.config_path)


class Logs:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        path = _log_file(self.runtime)
        offset = _int_param(req, "offset", 0, 0, MAX_OFFSET)
        limit = _int_param(req, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, clamp=True)
        entries, end = read_entries(path, offset, limit)
        resp.media = {
            "logs": entries,
            "offset": offset,
            "limit": limit,
            "next_offset": None if end else offset + len(entries),
            "end_is_reached": end,
        }


def _line_event(line: str, created: float) -> bytes:
    return sse.event("log_lines", {
        "id": line_id(line),
        "line": line,
        "datetime": datetime.fromtimestamp(created, UTC).isoformat(),
    })


def _log_lines(handler: LogFileHandler, watch: sse.Watch) -> Iterator[bytes]:
    subscription = handler.subscribe()  # on first iteration: a body never sent subscribes not
    yield from sse.lines(subscription, lambda: handler.unsubscribe(subscription), watch,
                         _line_event)


class LogStream:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        path = _log_file(self.runtime)
        handler = file_handler_for(path)
        if handler is None or not path.is_file():
            raise errors.not_found("Log file is not available.")
        slots = sse.open_stream(self.runtime)
        sse.respond(resp, _log_lines(handler, sse.Watch(req, self.runtime)), slots)


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/logs", Logs(runtime))
    app.add_route("/api/logs/stream", LogStream(runtime))


# --- OpenAPI (the rule: appliance/api/openapi.py) ----------------------------------------

_entry = {
    "type": "object",
    "required": ["id", "timestamp", "datetime", "level", "logger", "message"],
    "properties": {
        "id": {"type": "string", "description": "SHA-256 of the record's text (the same id "
                                                "as in the stream)."},
        "timestamp": {"type": ["string", "null"], "format": "date-time",
                      "description": "UTC, ISO 8601; null for a line that is not a record."},
        "datetime": {"type": ["string", "null"], "description": "Same as timestamp."},
        "level": {"type": "string", "examples": ["INFO", "WARNING", "ERROR"]},
        "logger": {"type": "string", "examples": ["appliance.engine.engine"]},
        "message": {"type": "string",
                    "description": "The message; a traceback follows on further lines."},
    },
}
_page = {
    "type": "object",
    "required": ["logs", "offset", "limit", "next_offset", "end_is_reached"],
    "properties": {
        "logs": {"type": "array", "items": _entry, "description": "Newest first."},
        "offset": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        "next_offset": {"type": ["integer", "null"],
                        "description": "The offset of the next (older) page; null at the end."},
        "end_is_reached": {"type": "boolean",
                           "description": "true when this page holds the oldest entry."},
    },
}

PATHS: dict[str, dict[str, Any]] = {
    "/api/logs": {"get": {
        "tags": ["system"],
        "operationId": "logs",
        "summary": "Pages of the log file, newest entry first",
        "description": "Entries are log records (a record with a traceback is one entry), "
                       "counted from the newest: offset 0 is the latest record. The rotated "
                       "files (appliance.log.1 …) continue the file, so paging reaches back "
                       "through them. New records shift the offsets; use the stream for "
                       "live lines.",
        "parameters": [
            query("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET,
                             "default": 0},
                  "Entries to skip, counted from the newest."),
            query("limit", {"type": "integer", "default": DEFAULT_LIMIT},
                  f"Entries to return, at most {MAX_LIMIT}: a larger limit is taken as "
                  f"{MAX_LIMIT}, one below 1 as 1 (as YTPTube does)."),
        ],
        "responses": {
            "200": json_response("A page of entries.", _page),
            "400": error("offset is not a whole number in range, or limit not a whole "
                         "number."),
            "404": error("File logging is not enabled (YTP_FILE_LOGGING=false)."),
        },
    }},
    "/api/logs/stream": {"get": {
        "tags": ["system"],
        "operationId": "logStream",
        "summary": "Live log lines (Server-Sent Events)",
        "description": "`text/event-stream`: a `log_lines` event per record written to the "
                       "log file from now on, data `{\"id\": <sha256 of line>, \"line\", "
                       "\"datetime\": <UTC ISO 8601>}`; a `: ping` comment every 15 s. The "
                       "stream lasts until the client leaves or the service stops. Each open "
                       "stream holds a request thread: at most YTP_MAX_STREAMS (log streams "
                       "and terminals together), then 503.",
        "responses": {
            "200": {"description": "The event stream.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}}},
            "404": error("File logging is not enabled, or the log file is not available."),
            "503": error("Too many live streams are open (Retry-After)."),
        },
    }},
}
