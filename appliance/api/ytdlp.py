"""``/api/yt-dlp/…``: URL info, options conversion, yt-dlp's option list."""

from __future__ import annotations

import functools
from typing import Any

import falcon

from .. import errors
from ..engine import options
from ..engine.option_table import tables
from ..runtime import Runtime
from .requests import json_object, query_bool
from .schemas import URL, error, json_body, json_response, query


class UrlInfo:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self.runtime.outside:
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
        options.parse_cli(args)  # what the option table refuses: at once, without yt-dlp
        # The params are yt-dlp's to make: a download process makes them (options.convert).
        resp.media = self.runtime.engine.converted(args)


def option_list() -> list[dict[str, Any]]:
    """yt-dlp's options as YTPTube lists them (``flags``, ``description``, ``group``,
    ``ignored``: removed when used), plus ``dest`` and ``takes_value``."""
    return _option_list(options._parser())


@functools.lru_cache(maxsize=1)
def _option_list(parser: Any) -> list[dict[str, Any]]:  # once per installed yt-dlp's table
    out = []
    for group in parser.option_groups:
        for option in group.option_list:
            out.append({
                "flags": option._short_opts + option._long_opts,
                "description": option.help or "",  # its default filled in (option_table)
                "group": group.title,
                "ignored": options.refusal(option.get_opt_string(), option, None,
                                           options.Context.DOWNLOAD) is not None,
                "dest": option.dest,
                "takes_value": option.takes_value(),
            })
    return out


def ytdlp_version() -> str:
    """The installed yt-dlp's version, without importing it (it may be updated in place)."""
    return tables.version()


class Options:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = option_list()


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/yt-dlp/url/info", UrlInfo(runtime))
    app.add_route("/api/yt-dlp/convert", Convert(runtime))
    app.add_route("/api/yt-dlp/options", Options())


# OpenAPI path items of this family (the rule: appliance/api/openapi.py).
_cached = {
    "type": "object",
    "required": ["status", "preset", "cli_args", "key", "ttl", "ttl_left", "expires"],
    "properties": {
        "status": {"enum": ["hit", "miss"]},
        "preset": {"type": "string"},
        "cli_args": {"type": "string"},
        "key": {"type": "string"},
        "ttl": {"type": "number"},
        "ttl_left": {"type": "number"},
        "expires": {"type": "number"},
    },
}

PATHS: dict[str, dict[str, Any]] = {
    "/api/yt-dlp/url/info": {"get": {
        "tags": ["yt-dlp"], "operationId": "urlInfo",
        "summary": "yt-dlp's info for a URL (cached for YTP_URL_INFO_CACHE_TTL)",
        "parameters": [
            query("url", URL, "The URL to read.", required=True),
            query("preset", {"type": "string"}, "A preset name (404 when unknown)."),
            query("args", {"type": "string"}, "yt-dlp command options (400 when bad)."),
            query("force", {"type": "boolean", "default": False}, "Skip the cache."),
        ],
        "responses": {
            "200": json_response("yt-dlp's info dict, plus `_cached`.", {
                "type": "object", "required": ["_cached"],
                "properties": {"_cached": _cached}}),
            "400": error("Missing or bad URL, bad options, or yt-dlp could not read the URL "
                         "(code DOWNLOAD_ERROR)."),
            "404": error("Unknown preset."),
            "503": error("Too many info requests at once (YTP_EXTRACT_INFO_CONCURRENCY), or "
                         "too many requests waiting on other servers (Retry-After)."),
        },
    }},
    "/api/yt-dlp/convert": {"post": {
        "tags": ["yt-dlp"], "operationId": "convertOptions",
        "summary": "The YoutubeDL params that yt-dlp command options give",
        "requestBody": json_body({
            "type": "object", "required": ["args"],
            "properties": {"args": {"type": "string", "examples": ["-f best --no-playlist"]}},
        }),
        "responses": {
            "200": json_response("Only what the options change from yt-dlp's defaults.", {
                "type": "object", "required": ["opts", "output_template", "download_path"],
                "properties": {
                    "opts": {"type": "object"},
                    "output_template": {"type": ["string", "null"]},
                    "download_path": {"type": ["string", "null"]},
                    "removed_options": {"type": "array", "items": {"type": "string"},
                                        "description": "Unsafe options that were removed."},
                },
            }),
            "400": error("args missing, or options yt-dlp cannot parse."),
        },
    }},
    "/api/yt-dlp/options": {"get": {
        "tags": ["yt-dlp"], "operationId": "ytdlpOptions",
        "summary": "yt-dlp's options (a bare array, as YTPTube's); ignored ones are removed "
                   "when used",
        "responses": {"200": json_response("The options.", {
            "type": "array", "items": {
                "type": "object",
                "required": ["flags", "description", "group", "ignored", "dest",
                             "takes_value"],
                "properties": {
                    "flags": {"type": "array", "items": {"type": "string"}},
                    "description": {"type": "string"},
                    "group": {"type": "string"},
                    "ignored": {"type": "boolean"},
                    "dest": {"type": ["string", "null"]},
                    "takes_value": {"type": "boolean"},
                },
            },
        })},
    }},
}
