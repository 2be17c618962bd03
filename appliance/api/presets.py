"""``/api/presets``: named sets of folder, template, cookies and yt-dlp options."""

from __future__ import annotations

from typing import Any

import falcon

from ..engine.presets import EDITABLE, YTPTUBE_ONLY
from ..runtime import Runtime
from .records import add_record_routes, record_paths

_text = {"type": "string"}
WRITE = {
    "type": "object",
    "properties": {
        **dict.fromkeys(EDITABLE, _text),
        "folder": {**_text, "description": "Relative to the download folder; never outside."},
        "cookies": {**_text, "description": "Netscape cookie file text."},
        "cli": {**_text, "description": "yt-dlp options, checked on yt-dlp's option table, "
                                        "then by yt-dlp itself in a download process (a value "
                                        "it refuses: 400); --download-archive NAME names this "
                                        "preset's archive."},
        "nfo": {"enum": ["", "tv", "movie"],
                "description": "Write a Jellyfin/Kodi NFO file beside each download."},
        "default": {"type": "boolean", "description": "Read-only; ignored when sent back."},
        "priority": {"type": "integer", "minimum": 0,
                     "description": "YTPTube's preset priority, kept and returned (0)."},
    },
    "description": "Fields of YTPTube's preset objects that have no meaning here (" + ", ".join(
        YTPTUBE_ONLY) + ") are ignored; other unknown fields are refused.",
}
READ: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "default"],
    "properties": {**WRITE["properties"], "id": {"type": "integer"},
                   "default": {"type": "boolean",
                               "description": "A shipped preset: cannot change or be deleted."}},
}

PATHS = record_paths("/api/presets", "presets", "preset", READ, WRITE)


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    add_record_routes(app, runtime, "/api/presets", runtime.engine.presets)
