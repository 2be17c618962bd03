"""Download archives: ``/api/archiver``, ``/api/history/{id}/archive``,
``/api/yt-dlp/archive_id``."""

from __future__ import annotations

from typing import Any

import falcon

from ..runtime import Runtime
from .middleware import not_modified
from .requests import json_object, read_json
from .schemas import error, json_body, json_response, path_param, query

_lines = {"type": "array", "items": {"type": "string"}, "examples": [["youtube ABC123"]]}
_change = {"type": "object", "required": ["file", "status", "items"],
           "properties": {"file": {"type": "string"}, "status": {"type": "boolean"},
                          "items": _lines}}
_message = {"type": "object", "required": ["message"],
            "properties": {"message": {"type": "string"}}}
_edit_body = json_body({"type": "object", "required": ["preset", "items"],
                        "properties": {"preset": {"type": "string"}, "items": _lines,
                                       "skip_check": {"type": "boolean"}}})


class Archiver:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.archiving = runtime.engine.archiving

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.archiving.read(req.get_param("preset"), req.get_param("ids"))

    def _edit(self, req: falcon.Request, resp: falcon.Response, adding: bool) -> None:
        body = json_object(req, self.runtime.settings.max_body)
        edit = self.archiving.add if adding else self.archiving.remove
        changed, result = edit(body.get("preset"), body.get("items"))
        if changed:
            resp.media = result
        else:
            not_modified(resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._edit(req, resp, adding=True)

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._edit(req, resp, adding=False)


class ItemArchive:
    def __init__(self, runtime: Runtime) -> None:
        self.archiving = runtime.engine.archiving

    def on_post(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        resp.media = self.archiving.archive_item(item_id)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        resp.media = self.archiving.unarchive_item(item_id)


class ArchiveIds:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        urls = read_json(req, self.runtime.settings.max_body)
        resp.media = self.runtime.engine.archiving.archive_ids(urls)


_result: dict[str, Any] = {
    "type": "object",
    "required": ["index", "url", "id", "ie_key", "archive_id", "error"],
    "properties": {"index": {"type": "integer"}, "url": {},
                   **{k: {"type": ["string", "null"]}
                      for k in ("id", "ie_key", "archive_id", "error")}},
}

PATHS = {
    "/api/archiver": {
        "get": {"tags": ["archive"], "operationId": "read_archive",
                "summary": "Entries of the archive a preset uses",
                "parameters": [query("preset", {"type": "string"}, "Preset name.",
                                     required=True),
                               query("ids", {"type": "string"},
                                     "Comma-separated archive ids (or bare ids) to keep.")],
                "responses": {"200": json_response("The entries.", {
                    "type": "object", "required": ["file", "items", "count"],
                    "properties": {"file": {"type": "string"}, "items": _lines,
                                   "count": {"type": "integer"}}}),
                    "400": error("No preset, unknown preset, or it has no archive.")}},
        "post": {"tags": ["archive"], "operationId": "add_to_archive",
                 "summary": "Add archive ids (200 when any was new, 304 when none)",
                 "requestBody": _edit_body,
                 "responses": {"200": json_response("Added.", _change),
                               "304": {"description": "Nothing new."},
                               "400": error("Bad preset or items.")}},
        "delete": {"tags": ["archive"], "operationId": "remove_from_archive",
                   "summary": "Remove archive ids (200 when the file changed, else 304)",
                   "requestBody": _edit_body,
                   "responses": {"200": json_response("Removed.", _change),
                                 "304": {"description": "None was there."},
                                 "400": error("Bad preset or items.")}},
    },
    "/api/history/{item_id}/archive": {
        "parameters": [path_param("item_id", "The item's id.")],
        "post": {"tags": ["archive"], "operationId": "archive_item",
                 "summary": "Put an item in its archive so that it is not downloaded again",
                 "responses": {"200": json_response("Archived.", _message),
                               "400": error("The item has no archive id yet."),
                               "404": error("No such item, or no archive configured."),
                               "409": error("Already archived.")}},
        "delete": {"tags": ["archive"], "operationId": "unarchive_item",
                   "summary": "Remove an item from its archive so that it can download again",
                   "responses": {"200": json_response("Removed.", _message),
                                 "400": error("No archive configured."),
                                 "404": error("No such item, or it is not archived.")}},
    },
    "/api/yt-dlp/archive_id": {"post": {
        "tags": ["archive"], "operationId": "archive_ids",
        "summary": "The archive id of each URL, found without downloading",
        "requestBody": json_body({"type": "array", "items": {}, "minItems": 1,
                                  "maxItems": 500}),
        "responses": {"200": json_response("One result per URL, in order; errors per entry.",
                                           {"type": "array", "items": _result}),
                      "400": error("Not a JSON array of URLs.")},
    }},
}


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/archiver", Archiver(runtime))
    app.add_route("/api/history/{item_id}/archive", ItemArchive(runtime))
    app.add_route("/api/yt-dlp/archive_id", ArchiveIds(runtime))
