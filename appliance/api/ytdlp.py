"""``/api/yt-dlp/…``: URL info, options conversion, yt-dlp's option list."""

from __future__ import annotations

import functools
from typing import Any

import falcon

from .. import errors
from ..engine import options
from ..runtime import Runtime
from .requests import json_object, query_bool


class UrlInfo:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.runtime.url_info.get(
            req.get_param("url"), req.get_param("preset"), req.get_param("args"),
            query_bool(req, "force"),
        )


class Convert:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        args = json_object(req, self.runtime.settings.max_body).get("args")
        if not isinstance(args, str):
            raise errors.invalid("args is required and must be a string.")
        resp.media = options.convert(args)


@functools.cache
def option_list() -> list[dict[str, Any]]:
    parser = options._parser()
    out = []
    for group in parser.option_groups:
        for option in group.option_list:
            out.append({
                "flags": option._short_opts + option._long_opts,
                "dest": option.dest,
                "group": group.title,
                "help": (option.help or "").replace("%default", str(option.default)),
                "takes_value": option.takes_value(),
                "blocked": option.dest in options.BLOCKED_DESTS
                or bool(set(option._long_opts) & options.BLOCKED_FLAGS),
            })
    return out


class Options:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        from yt_dlp.version import __version__ as ytdlp_version

        resp.media = {"version": ytdlp_version, "options": option_list()}


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/yt-dlp/url/info", UrlInfo(runtime))
    app.add_route("/api/yt-dlp/convert", Convert(runtime))
    app.add_route("/api/yt-dlp/options", Options())
