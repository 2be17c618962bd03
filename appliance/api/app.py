"""The Falcon application factory: routes, middleware, media, errors."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.media
import orjson

from ..runtime import Runtime
from . import errors, history, system, ytdlp
from .middleware import BodyLimit, ETags, RequestContext


class NotFound:
    """Unknown routes answer in JSON like every other error."""

    def __call__(self, req: falcon.Request, resp: falcon.Response, **kwargs: str) -> None:
        raise falcon.HTTPNotFound(description=f"No such endpoint: {req.path}")


def create_app(runtime: Runtime) -> falcon.App:
    app = falcon.App(
        middleware=[RequestContext(), BodyLimit(runtime.settings.max_body), ETags()],
    )
    app.req_options.strip_url_path_trailing_slash = True
    json = falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)
    app.req_options.media_handlers[falcon.MEDIA_JSON] = json
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = json
    errors.install(app)
    for family in (system, history, ytdlp):
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
