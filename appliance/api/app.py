"""The Falcon application factory: routes, middleware, media, errors."""

from __future__ import annotations

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
