"""``/api/ping``, ``/api/health``, ``/api/engine/stats``, ``/api/system/…``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import falcon

from .. import __version__, errors, flasharr
from ..engine.js_runtime import js_runtime
from ..files.index import nameable
from ..runtime import Runtime
from ..store.records import DONE
from .queue_view import QUEUE_COUNT, QUEUE_ITEM, QUEUE_PARAMETERS, requested_queue
from .schemas import error, json_response
from .ytdlp import ytdlp_version

MAX_FOLDERS = 2000


class Ping:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "pong"}


class Health:
    """Flasharr's health check, with the facts a monitor wants (database, disk)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            self.runtime.store.read_check()
            database = "ok"
        except Exception as exc:  # the check exists to report this, not to raise it
            database = f"error: {exc}"
        try:
            free: int | None = shutil.disk_usage(self.runtime.settings.download_path).free
        except OSError:  # its disk unplugged: the engine says so (download_folder below)
            free = None
        healthy = database == "ok"
        resp.status = falcon.HTTP_200 if healthy else falcon.HTTP_503
        resp.media = {
            "status": "ok" if healthy else "error",
            "version": __version__,
            "instance_id": self.runtime.instance_id,
            "database": database,
            "download_path_free_bytes": free,
            "download_folder": self.runtime.engine.folder_disk.problem or "ok",
        }


class EngineStats:
    """Flasharr's ``/api/engine/stats`` from the same queue."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = engine_stats(self.runtime)


def engine_stats(runtime: Runtime) -> dict[str, Any]:
    return flasharr.engine_stats(runtime.engine.stats(), runtime.store.status_counts())


def list_folders(root: Path, depth: int) -> list[dict[str, str]]:
    """Folders under the download path, to ``depth`` levels, hidden ones skipped."""
    folders: list[dict[str, str]] = []
    if depth < 1:
        return folders
    for current, dirs, _files in os.walk(root):
        rel = Path(current).relative_to(root)
        # a name that is not valid UTF-8 cannot be sent (the file index leaves it out too)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and nameable(d))
        if len(rel.parts) >= depth:
            dirs[:] = []
        for name in dirs:
            path = (rel / name).as_posix()
            folders.append({"name": name, "path": path})
            if len(folders) >= MAX_FOLDERS:
                return folders
    return folders


class Configuration:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        settings = self.runtime.settings
        host = req.host or "127.0.0.1"  # falcon's: without the port, an IPv6 one unbracketed
        if ":" in host:
            host = f"[{host}]"
        ws_scheme = "wss" if req.scheme == "https" else "ws"
        ws_path = f"{settings.base_path}ws"
        queue, queue_count = requested_queue(req, self.runtime.engine)
        resp.media = {
            "app": {**settings.public(), "version": __version__,
                    "instance_id": self.runtime.instance_id,
                    "auth_enabled": self.runtime.auth.enabled,
                    # The names YTPTube's web UI reads (items without a preset use "default").
                    "default_preset": "default", "app_version": __version__,
                    "ytdlp_version": ytdlp_version()},
            "presets": self.runtime.engine.presets.all(),
            "dl_fields": self.runtime.engine.dl_fields.all(),
            "paused": self.runtime.engine.paused,
            "folders": list_folders(settings.download_path, settings.folder_depth),
            "history_count": self.runtime.store.count(DONE),
            "queue": queue,
            "queue_count": queue_count,
            "websocket": {
                "port": settings.websocket_port,
                "path": ws_path,
                "url": f"{ws_scheme}://{host}:{settings.websocket_port}{ws_path}",
                "flasharr_path": "/api/ws",
            },
            "files": self.runtime.files.status(),
            "js_runtime": js_runtime(),
        }


class SystemPause:
    def __init__(self, runtime: Runtime, paused: bool) -> None:
        self.runtime, self.paused = runtime, paused

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self.runtime.engine.set_paused(self.paused):
            state = "already paused" if self.paused else "not paused"
            raise errors.AppError(f"Downloads are {state}.", errors.NOT_ACCEPTABLE)
        resp.media = {
            "message": "Non-active downloads have been paused." if self.paused
            else "Resumed all downloads."
        }


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/ping", Ping())
    app.add_route("/api/health", Health(runtime))
    app.add_route("/api/engine/stats", EngineStats(runtime))
    app.add_route("/api/system/configuration", Configuration(runtime))
    app.add_route("/api/system/pause", SystemPause(runtime, True))
    app.add_route("/api/system/resume", SystemPause(runtime, False))


# OpenAPI path items of this family (the rule: appliance/api/openapi.py).
_INSTANCE_ID = ("This service's id (32 hex digits), kept in the config folder across restarts "
                "and address changes: what tells one appliance from another.")
_stats = {
    "type": "object",
    "required": ["active_downloads", "queued", "completed", "failed", "paused", "total_speed",
                 "system_paused", "db_counts"],
    "properties": {
        "active_downloads": {"type": "integer"},
        "queued": {"type": "integer"},
        "completed": {"type": "integer"},
        "failed": {"type": "integer"},
        "paused": {"type": "integer"},
        "total_speed": {"type": "number", "description": "Bytes per second, all downloads."},
        "system_paused": {"type": "boolean"},
        "download_folder_problem": {
            "type": ["string", "null"],
            "description": "Why no download starts now: the download folder's disk is not "
                           "mounted or is read-only, or the folder is missing (null: "
                           "nothing)."},
        "db_counts": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}
_health = {
    "type": "object",
    "required": ["status", "version", "instance_id", "database", "download_path_free_bytes"],
    "properties": {
        "status": {"enum": ["ok", "error"]},
        "version": {"type": "string"},
        "instance_id": {"type": "string", "description": _INSTANCE_ID},
        "database": {"type": "string", "description": "`ok` or `error: <reason>`."},
        "download_path_free_bytes": {"type": ["integer", "null"],
                                     "description": "null while the download folder is "
                                                    "missing."},
        "download_folder": {"type": "string", "description": (
            "`ok`, or why downloads wait for the download folder's disk (not mounted, or the "
            "folder missing): the same text as the engine's `download_folder_problem`.")},
    },
}
_configuration = {
    "type": "object",
    "required": ["app", "presets", "dl_fields", "paused", "folders", "history_count", "queue",
                 "queue_count", "websocket", "js_runtime"],
    "properties": {
        "app": {"type": "object", "description": "Public settings (no secrets), version and "
                "instance_id.",
                "required": ["version", "default_preset", "app_version", "ytdlp_version"],
                "properties": {"version": {"type": "string"},
                               "default_preset": {"type": "string"},
                               "app_version": {"type": "string"},
                               "ytdlp_version": {"type": "string"},
                               "instance_id": {"type": "string",
                                               "description": _INSTANCE_ID}}},
        "presets": {"type": "array", "items": {"type": "object"}},
        "dl_fields": {"type": "array", "items": {"type": "object"}},
        "paused": {"type": "boolean"},
        "folders": {
            "type": "array",
            "description": f"Folders under the download folder (at most {MAX_FOLDERS}).",
            "items": {"type": "object", "required": ["name", "path"],
                      "properties": {"name": {"type": "string"}, "path": {"type": "string"}}},
        },
        "history_count": {"type": "integer"},
        "files": {
            "type": "object",
            "description": "How the download folder's index is kept: watching (inotify) or "
                           "polling (rescans every rescan_interval s; reason says why).",
            "properties": {"mode": {"enum": ["watching", "polling"]},
                           "reason": {"type": "string"}, "indexed": {"type": "boolean"},
                           "rescan_interval": {"type": "number"}},
        },
        "queue": {"type": "array", "items": QUEUE_ITEM},
        "queue_count": QUEUE_COUNT,
        "websocket": {
            "type": "object",
            "required": ["port", "path", "url", "flasharr_path"],
            "properties": {"port": {"type": "integer"}, "path": {"type": "string"},
                           "url": {"type": "string"}, "flasharr_path": {"type": "string"}},
        },
        "js_runtime": {
            "type": ["object", "null"],
            "description": "The JavaScript runtime yt-dlp uses for YouTube's challenges "
                           "(null: none found), and the yt-dlp-ejs solver's version.",
            "properties": {"name": {"enum": ["deno", "node"]}, "path": {"type": "string"},
                           "version": {"type": "string"},
                           "solver": {"type": ["string", "null"]}},
        },
    },
}


def _system_pause(paused: bool) -> dict[str, Any]:
    word = "pause" if paused else "resume"
    return {"post": {
        "tags": ["system"],
        "operationId": f"system{word.title()}",
        "summary": "Hold the whole queue (running downloads finish)" if paused
        else "Let the queue run again",
        "responses": {
            "200": json_response("Done.", {"type": "object", "required": ["message"],
                                           "properties": {"message": {"type": "string"}}}),
            "406": error(f"Downloads are {'already paused' if paused else 'not paused'}."),
        },
    }}


PATHS: dict[str, dict[str, Any]] = {
    "/api/ping": {"get": {
        "tags": ["system"], "operationId": "ping", "summary": "Liveness check (always open)",
        "responses": {"200": json_response("Pong.", {
            "type": "object", "required": ["status"],
            "properties": {"status": {"const": "pong"}}})},
    }},
    "/api/health": {"get": {
        "tags": ["system"], "operationId": "health",
        "summary": "Flasharr's health check: database and free disk (always open)",
        "responses": {"200": json_response("Healthy.", _health),
                      "503": json_response("The database fails.", _health)},
    }},
    "/api/engine/stats": {"get": {
        "tags": ["system"], "operationId": "engineStats",
        "summary": "Flasharr's engine figures, plus system_paused",
        "responses": {"200": json_response("The figures.", _stats)},
    }},
    "/api/system/configuration": {"get": {
        "tags": ["system"], "operationId": "configuration",
        "summary": "What a client needs at start: settings, presets, folders, queue, websocket",
        "parameters": QUEUE_PARAMETERS,
        "responses": {"200": json_response("The configuration.", _configuration),
                      "400": error("A queue_fields or queue_limit that is not one.")},
    }},
    "/api/system/pause": _system_pause(True),
    "/api/system/resume": _system_pause(False),
}
