"""``/api/system/ytdlp``: the installed yt-dlp and the index's newest; ``…/update`` installs
it (in the background; progress and result in the GET and as websocket messages)."""

from __future__ import annotations

from typing import Any

import falcon

from ..runtime import Runtime
from .schemas import error, json_response


class YtdlpStatus:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.runtime.ytdlp.status()


class YtdlpUpdate:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_202
        resp.media = {"update": self.runtime.ytdlp.start_update()}


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/system/ytdlp", YtdlpStatus(runtime))
    app.add_route("/api/system/ytdlp/update", YtdlpUpdate(runtime))


# OpenAPI path items of this family (the rule: appliance/api/openapi.py).
_update = {
    "type": "object",
    "required": ["state"],
    "properties": {
        "state": {"enum": ["idle", "running", "updated", "up_to_date", "rolled_back",
                           "failed"]},
        "installed": {"type": ["string", "null"]},
        "previous": {"type": ["string", "null"]},
        "target": {"type": ["string", "null"]},
        "message": {"type": "string"},
        "started_at": {"type": "number"},
        "finished_at": {"type": "number"},
    },
}
_status = {
    "type": "object",
    "required": ["installed", "latest", "update_available", "index_url",
                 "update_interval_hours", "update"],
    "properties": {
        "installed": {"type": "string"},
        "latest": {"type": "string",
                   "description": "The index's newest final release; `unknown` when the "
                                  "index cannot be reached."},
        "update_available": {"type": ["boolean", "null"]},
        "index_url": {"type": "string"},
        "update_interval_hours": {"type": "number", "description": "0: no scheduled update."},
        "update": _update,
    },
}

PATHS: dict[str, dict[str, Any]] = {
    "/api/system/ytdlp": {"get": {
        "tags": ["system"], "operationId": "ytdlpVersion",
        "summary": "The installed yt-dlp, the package index's newest, the last update",
        "responses": {"200": json_response("Never an error: an unreachable index is "
                                           "`unknown`.", _status)},
    }},
    "/api/system/ytdlp/update": {"post": {
        "tags": ["system"], "operationId": "ytdlpUpdate",
        "summary": "Install the newest yt-dlp (checked; rolled back if it fails the check)",
        "description": "Runs in the background: follow it in `GET /api/system/ytdlp` or the "
                       "websocket's messages. Running downloads keep their yt-dlp; the next "
                       "ones use the new one.",
        "responses": {
            "202": json_response("Started.", {"type": "object", "required": ["update"],
                                              "properties": {"update": _update}}),
            "409": error("An update is already running."),
        },
    }},
}
