"""Shared OpenAPI 3.1 pieces: component schemas, headers and small helpers that the resource
modules use in their ``PATHS`` (see ``openapi.py`` for the rule)."""

from __future__ import annotations

from typing import Any

from .. import errors
from ..auth import COOKIE_NAME
from ..store.records import ALL_STATUSES, DONE, QUEUE

JSON = "application/json"

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    """A reference to a schema in ``components.schemas``."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def json_body(schema: Schema, description: str = "", *, required: bool = True) -> dict[str, Any]:
    """A JSON request body (``application/json``; another content type gets 415)."""
    body: dict[str, Any] = {"required": required, "content": {JSON: {"schema": schema}}}
    if description:
        body["description"] = description
    return body


def json_response(description: str, schema: Schema, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def error(description: str) -> dict[str, Any]:
    """A response with the one error body, ``{"error", "code"}``."""
    return json_response(description, ref("Error"))


# The answer of a request that waits on another server when OUTSIDE_WAITS already do
# (appliance/slots.py).
WAITING_OUTSIDE = error("Too many requests are waiting on other servers; Retry-After says "
                        "when to try again.")


# The answers of a file over 1 MiB when YTP_MAX_TRANSFERS are being sent, or when this client
# is already being sent its half of them (appliance/slots.py).
TRANSFERS_FULL = ("Every place for files being sent is taken (YTP_MAX_TRANSFERS); Retry-After "
                  "says when to try again.")
CLIENT_SHARE = error("This client is already being sent half of YTP_MAX_TRANSFERS files; "
                     "Retry-After says when to try again.")
# A delete with files (engine.delete_items) while they are out of reach.
FILES_AWAY = error("remove_file while the download folder's disk is gone or read-only: nothing "
                   "was deleted (the files would have stayed for good).")


def query(name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


def path_param(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "path", "required": True,
            "schema": schema or {"type": "string"}, "description": description}


_string = {"type": "string"}
_number = {"type": "number"}
_integer = {"type": "integer"}
_ids = {"type": "array", "items": {"type": "string"}, "minItems": 1}

URL = {
    "type": "string",
    "pattern": "^https?://",
    "maxLength": 8192,
    "description": "An http(s) URL (other schemes are refused with 400).",
    "examples": ["https://www.youtube.com/watch?v=jNQXAC9IVRw"],
}

ITEM = {
    "type": "object",
    "description": "The contract's ItemDTO: one download, in the queue or in the history.",
    "required": ["_id", "id", "url", "kind", "status"],
    "properties": {
        "_id": {**_string, "description": "The item's UUID (same as id)."},
        "id": {**_string, "description": "The item's UUID."},
        "url": _string,
        "kind": {"enum": [QUEUE, DONE], "description": "queue: waiting or running; done: history."},
        "status": {"enum": sorted(ALL_STATUSES)},
        "title": _string,
        "preset": _string,
        "folder": {**_string, "description": "Relative to the download folder."},
        "download_dir": {**_string, "description": "Same as folder."},
        "template": _string,
        "cli": {**_string, "description": "yt-dlp options kept for this item."},
        "has_cookies": {"type": "boolean", "description": "Cookies are stored, never returned."},
        "auto_start": {"type": "boolean", "description": "false: paused, waits for start."},
        "extractor": _string,
        "video_id": {**_string, "description": "The site's own id of the video."},
        "batch_id": _string,
        "batch_name": _string,
        "created_at": _number,
        "timestamp": {**_integer, "description": "created_at in nanoseconds (YTPTube's)."},
        "datetime": {**_string, "description": "created_at as an RFC 2822 date (YTPTube's).",
                     "examples": ["Wed, 02 Dec 2026 23:35:59 GMT"]},
        "updated_at": _number,
        "started_at": nullable(_number),
        "finished_at": nullable(_number),
        "filename": {**_string, "description": "Relative to the download folder."},
        "file_size": nullable(_integer),
        "downloaded_bytes": nullable(_integer),
        "total_bytes": nullable(_integer),
        "error": _string,
        "msg": _string,
        "info": {"type": "object"},
        "extras": {"type": "object"},
        "removed_options": {"type": "array", "items": _string},
        "percent": nullable(_number),
        "progress": nullable(_number),
        "speed": nullable({**_number, "description": "Bytes per second, as yt-dlp gives it."}),
        "speed_text": nullable({**_string, "examples": ["2.5 MiB/s"]}),
        "eta": nullable({**_number, "description": "Seconds, as yt-dlp gives it."}),
        "eta_text": nullable({**_string, "examples": ["00:05:23"]}),
        "sidecar": {"type": "object", "description": (
            "In /api/history answers: the files beside a finished item's file (subtitles, "
            "thumbnail, NFO, info.json) by content type, as /api/file/info gives them; {} "
            "otherwise. Not in websocket events."),
            "additionalProperties": {"type": "array", "items": {"type": "object"}}},
    },
}

ERROR = {
    "type": "object",
    "description": "The one error body. Codes: " + ", ".join(
        f"{code} ({status})" for code, status in errors.STATUS_BY_CODE.items()
    ) + ". A 500 also carries request_id, the id under which the log has the details.",
    "required": ["error", "code"],
    "properties": {
        "error": {**_string, "description": "Human text."},
        "code": {**_string, "description": "Machine code.", "examples": [errors.INVALID_REQUEST]},
        "request_id": _string,
    },
}

PAGINATION = {
    "type": "object",
    "required": ["page", "per_page", "total", "total_pages", "has_next", "has_prev"],
    "properties": {
        "page": {**_integer, "minimum": 1},
        "per_page": {**_integer, "minimum": 1},
        "total": {**_integer, "minimum": 0},
        "total_pages": {**_integer, "minimum": 1},
        "has_next": {"type": "boolean"},
        "has_prev": {"type": "boolean"},
    },
}

ADD_REQUEST = {
    "type": "object",
    "description": "One download to add. A playlist URL becomes one item per entry.",
    "required": ["url"],
    "properties": {
        "url": URL,
        "preset": {**_string, "description": "A preset name (400 when unknown).",
                   "examples": ["default"]},
        "folder": {**_string, "description": "Relative to the download folder; never outside."},
        "template": {**_string, "description": "yt-dlp output template; never outside."},
        "cookies": {**_string, "maxLength": 1024 * 1024,
                    "description": "Netscape cookie file text (7 tab-separated fields a line)."},
        "cli": {**_string, "description": "yt-dlp command options; unsafe ones are removed "
                                          "(reported in removed_options), bad ones give 400."},
        "auto_start": {"type": ["boolean", "null"], "description": "false: add paused."},
        "batch_id": _string,
        "batch_name": _string,
        "extras": {"type": ["object", "null"]},
    },
}

# What a delete with files adds to its answer when a file stayed (engine.deleting).
FILES_KEPT = {
    "type": "object", "additionalProperties": {"type": "string"},
    "description": "Per id of an item deleted with its files whose file stayed: why (another "
                   "item records it too). Only when one did.",
}
BULK_RESULT = {
    "type": "object",
    "description": "Per id: what was done, or `not found`.",
    "additionalProperties": {"enum": ["started", "paused", "ok", "deleted", "not found"]},
}

COMPONENTS: dict[str, Any] = {
    "schemas": {
        "Item": ITEM,
        "Error": ERROR,
        "Pagination": PAGINATION,
        "AddRequest": ADD_REQUEST,
        "BulkResult": BULK_RESULT,
        "Ids": {"type": "object", "required": ["ids"], "properties": {"ids": _ids}},
    },
    "headers": {
        "API-Version": {
            "description": "The API version (FlexGet convention); on every response.",
            "required": True, "schema": _string,
        },
        "X-Request-ID": {
            "description": "The request id (the client's when it sent an alphanumeric one); "
                           "logs name it.",
            "required": True, "schema": _string,
        },
        "ETag": {
            "description": "On every GET answer with a body; send it back in If-None-Match "
                           "to get 304 when nothing changed.",
            "required": True, "schema": _string,
        },
    },
    "securitySchemes": {
        # Any one of these, when credentials are configured (else the API is open).
        "basic": {"type": "http", "scheme": "basic",
                  "description": "YTP_AUTH_USERNAME / YTP_AUTH_PASSWORD."},
        "token": {"type": "apiKey", "in": "header", "name": "Authorization",
                  "description": "`Token <token>` (FlexGet's way; `appliance web showtoken`)."},
        "apikey": {"type": "apiKey", "in": "query", "name": "apikey",
                   "description": "URL-safe base64 of `user:password`."},
        "cookie": {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME,
                   "description": "The session cookie that POST /api/auth/login sets."},
    },
    "parameters": {
        "IfNoneMatch": {
            "name": "If-None-Match", "in": "header", "required": False, "schema": _string,
            "description": "An ETag from an earlier answer: 304 with no body when it matches.",
        },
    },
}
