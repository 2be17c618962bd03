"""``/api/dl_fields``: extra inputs of the add form, each setting one yt-dlp option."""

from __future__ import annotations

from typing import Any

import falcon

from ..engine.dl_fields import KINDS
from ..runtime import Runtime
from .records import add_record_routes, record_paths

WRITE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "field": {"type": "string", "description": "The yt-dlp option it sets, e.g. --proxy.",
                  "examples": ["--proxy"]},
        "kind": {"enum": list(KINDS)},
        "order": {"type": "integer"},
        "value": {"type": "string", "description": "The default value shown."},
        "icon": {"type": "string"},
        "extras": {"type": "object"},
    },
}
READ: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "field", "kind"],
    "properties": {**WRITE["properties"], "id": {"type": "integer"}},
}

PATHS = record_paths("/api/dl_fields", "dl_fields", "download field", READ, WRITE)


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    add_record_routes(app, runtime, "/api/dl_fields", runtime.engine.dl_fields)
