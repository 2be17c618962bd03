"""``/api/conditions``: filters on an item's info, with an action when they match."""

from __future__ import annotations

from typing import Any

import falcon

from .. import errors
from ..engine.records import INT_RANGE
from ..runtime import Runtime
from .records import add_record_routes, record_paths
from .requests import json_object
from .schemas import URL, error, json_body, json_response

# Fields of an info dict that are large or private; the test answer leaves them out.
HIDDEN = frozenset({"formats", "requested_formats", "thumbnails", "subtitles",
                    "automatic_captions", "http_headers", "cookies", "requested_downloads",
                    "fragments", "heatmap", "comments"})

WRITE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "filter": {"type": "string",
                   "description": "yt-dlp --match-filters syntax with || and parentheses.",
                   "examples": ["duration > 600 & !is_live || title ~= '(?i)live'"]},
        "cli": {"type": "string", "description": "yt-dlp options added when it matches."},
        "extras": {"type": "object", "description": "preset: switch to this preset; "
                                                    "skip: true to skip the item."},
        "enabled": {"type": "boolean"},
        "priority": {"type": "integer", "minimum": INT_RANGE[0],
                     "maximum": INT_RANGE[1], "description": "Higher first."},
        "description": {"type": "string"},
    },
}
READ: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "filter", "enabled", "priority"],
    "properties": {**WRITE["properties"], "id": {"type": "integer"}},
}


class ConditionTest:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_object(req, self.runtime.settings.max_body)
        expression = body.get("condition")
        if not isinstance(expression, str) or not expression.strip():
            raise errors.invalid("condition is required.")
        condition = self.runtime.engine.conditions.parsed(expression)
        preset = body.get("preset")
        if preset is not None and not isinstance(preset, str):
            raise errors.invalid("preset must be a preset name.")
        with self.runtime.outside:
            info = self.runtime.url_info.get(body.get("url"), preset or None, None, False)
        data = {k: v for k, v in info.items() if k not in HIDDEN and not k.startswith("_")}
        status = self.runtime.engine.conditions.test(condition, data)
        resp.media = {"status": status, "condition": expression, "data": data}


PATHS = {
    **record_paths("/api/conditions", "conditions", "condition", READ, WRITE),
    "/api/conditions/test": {"post": {
        "tags": ["conditions"], "operationId": "test_condition",
        "summary": "Evaluate a filter against a URL's extracted info",
        "requestBody": json_body({"type": "object", "required": ["url", "condition"],
                                  "properties": {"url": URL, "condition": {"type": "string"},
                                                 "preset": {"type": "string"}}}),
        "responses": {
            "200": json_response("Whether it matches, and the data it was evaluated on.", {
                "type": "object", "required": ["status", "condition", "data"],
                "properties": {"status": {"type": "boolean"}, "condition": {"type": "string"},
                               "data": {"type": "object"}}}),
            "400": error("Bad body, a filter syntax error (with its position), a URL "
                         "yt-dlp cannot read, or a regular expression that took longer than "
                         "its bound (code REGEX_TIMEOUT)."),
            "404": error("Unknown preset."),
            "503": error("Too many info extractions at once, or too many requests waiting "
                         "on other servers (Retry-After)."),
        },
    }},
}


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    add_record_routes(app, runtime, "/api/conditions", runtime.engine.conditions)
    app.add_route("/api/conditions/test", ConditionTest(runtime))
