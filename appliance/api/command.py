"""``POST /api/yt-dlp/command``: the yt-dlp command line an add request would run, with the
priority merge (request > preset > defaults) applied. Console users only."""

from __future__ import annotations

import falcon

from .. import errors
from ..runtime import Runtime
from .requests import json_object
from .schemas import ADD_REQUEST, error, json_body, json_response


class Command:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self.runtime.settings.console_enabled:
            raise errors.AppError("The console is disabled (YTP_CONSOLE_ENABLED=false).",
                                  errors.FORBIDDEN)
        body = json_object(req, self.runtime.settings.max_body)
        resp.media = {"command": self.runtime.engine.command_line(body)}


PATHS = {
    "/api/yt-dlp/command": {"post": {
        "tags": ["yt-dlp"], "operationId": "command_line",
        "summary": "The merged yt-dlp command for an item (YTP_CONSOLE_ENABLED only)",
        "requestBody": json_body(ADD_REQUEST),
        "responses": {
            "200": json_response("The command as it would run.", {
                "type": "object", "required": ["command"],
                "properties": {"command": {"type": "string"}}}),
            "400": error("Invalid body, fields or options."),
            "403": error("The console is disabled."),
        },
    }},
}


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/yt-dlp/command", Command(runtime))
