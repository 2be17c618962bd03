"""The Falcon application factory: routes, middleware, media, errors."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.media
import orjson

from ..json_input import load_json
from ..runtime import Runtime
from . import (
    admin,
    archive,
    auth,
    command,
    conditions,
    console,
    dl_fields,
    docs_files,
    downloads,
    errors,
    executions,
    files,
    flasharr,
    flasharr_queue,
    flasharr_settings,
    history,
    images,
    logs,
    notifications,
    openapi,
    player,
    presets,
    system,
    task_definitions,
    tasks,
    ytdlp,
    ytdlp_updates,
)
from .cors import CORS, ForeignPages
from .middleware import BodyLimit, ETags, RequestContext

# The route families: each module has add_routes(app, runtime) and PATHS (its OpenAPI path
# items). create_app registers these and openapi.build() documents these — one list for both,
# so a family added here must document its routes (tests/test_openapi.py checks).
FAMILIES = (
    system, auth, history, ytdlp, flasharr_queue, flasharr, flasharr_settings, logs, console,
    admin, docs_files, openapi, presets, dl_fields, conditions, archive, command, notifications,
    tasks, executions, task_definitions, files, downloads, images, player, ytdlp_updates,
)


class NotFound:
    """Unknown routes answer in JSON like every other error."""

    def __call__(self, req: falcon.Request, resp: falcon.Response, **kwargs: str) -> None:
        raise falcon.HTTPNotFound(description=f"No such endpoint: {req.path}")


def create_app(runtime: Runtime) -> falcon.App:
    app = falcon.App(
        middleware=[
            RequestContext(),
            *([CORS(runtime.settings.cors_origins)] if runtime.settings.cors_origins else []),
            ForeignPages(runtime.auth.browsers),  # after CORS (preflight), before auth
            # after CORS (preflight), before everything else
            auth.Authenticate(runtime.auth, lambda: runtime.files.root),
            BodyLimit(runtime.settings.max_body),
            ETags(),
        ],
    )
    app.req_options.strip_url_path_trailing_slash = True
    json = falcon.media.JSONHandler(dumps=orjson.dumps, loads=load_json)
    app.req_options.media_handlers[falcon.MEDIA_JSON] = json
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = json
    errors.install(app)
    for family in FAMILIES:
        family.add_routes(app, runtime)
    app.add_sink(NotFound(), prefix="/")
    return app


def mount(app: falcon.App, base_path: str) -> Any:
    """Serve the app under ``base_path`` too, for a reverse proxy that keeps the prefix."""
    prefix = base_path.rstrip("/")
    if not prefix:
        return app

    def prefixed(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == prefix or path.startswith(prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
            environ["PATH_INFO"] = path[len(prefix):] or "/"
        return app(environ, start_response)

    return prefixed
