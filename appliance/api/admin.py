"""The rest of the contract's system family: ``/api/system/shutdown``,
``/api/system/check-updates``, ``/api/dev/loop`` and ``/api/dev/pip``
(``/api/random/background``: api/images.py)."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import re
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import falcon

from .. import __version__, errors
from ..connection_failures import unreached
from ..http_statuses import said
from ..runtime import Runtime
from .schemas import WAITING_OUTSIDE, error, json_response

log = logging.getLogger(__name__)

UPDATE_TIMEOUT = 3.0
MAX_UPDATE_ANSWER = 8 * 1024 * 1024
LOOP_TIMEOUT = 2.0
PIP_PACKAGES = (
    "appliance", "falcon", "gunicorn", "yt-dlp", "yt-dlp-ejs", "pony", "websockets", "orjson",
    "PyYAML", "apprise", "swagger-ui-py", "textual", "curl_cffi", "requests", "certifi",
)


class Shutdown:
    """The contract's shutdown exists for its native (desktop window) mode only. This service
    has no such mode: it runs under gunicorn, normally as a systemd service, and is stopped
    the way services are."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise errors.invalid(
            "Shutdown is only available in the native mode; this service has none. Stop it "
            "as a service: `systemctl stop appliance` (or SIGTERM to the `appliance serve` "
            "process)."
        )


# --- update check ------------------------------------------------------------------------


def _version_key(text: str) -> tuple[Any, ...] | None:
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:  # packaging is nearly always there; plain release numbers otherwise
        match = re.fullmatch(r"v?(\d+(?:\.\d+)*)", text.strip())
        return tuple(int(p) for p in match.group(1).split(".")) if match else None
    try:
        return (Version(text),)
    except InvalidVersion:
        return None


def _fetch_latest(url: str) -> str:
    """The newest release's version from a PyPI JSON API answer (``info.version``)."""
    request = urllib.request.Request(url, headers={
        "Accept": "application/json", "User-Agent": f"appliance/{__version__}",
    })
    deadline = time.monotonic() + UPDATE_TIMEOUT
    with urllib.request.urlopen(request, timeout=UPDATE_TIMEOUT) as answer:
        body = bytearray()
        while chunk := answer.read(65536):
            body += chunk
            if len(body) > MAX_UPDATE_ANSWER:
                raise ValueError("the answer is too large")
            if time.monotonic() > deadline:
                raise TimeoutError("the answer took too long")
    try:
        data = json.loads(bytes(body))
    except ValueError:
        raise ValueError("the answer is not JSON (YTP_UPDATE_CHECK_URL must be a package "
                         "index's JSON address, …/pypi/appliance/json)") from None
    info = data.get("info") if isinstance(data, dict) else None
    version = info.get("version") if isinstance(info, dict) else None
    if not isinstance(version, str) or not version:
        raise ValueError("the answer has no info.version")
    return version


def check_for_update(url: str) -> dict[str, Any]:
    """``status`` up_to_date | update_available | error, never waiting longer than
    ``UPDATE_TIMEOUT`` (name resolution included: the fetch runs in a thread)."""
    result: dict[str, Any] = {"status": "error", "current_version": __version__,
                              "new_version": None}
    outcome: dict[str, Any] = {}

    def fetch() -> None:
        try:
            outcome["version"] = _fetch_latest(url)
        except urllib.error.HTTPError as exc:
            words = said(exc.code, str(exc.reason or ""))
            outcome["error"] = (f"Cannot read {url}: {words}" if words else
                                f"{url} answered HTTP {exc.code}.")
        except urllib.error.URLError as exc:
            # (its reason is an OSError's text: "[Errno -2] Name or service not known")
            reason = unreached(str(exc.reason))
            outcome["error"] = f"Cannot reach {url}: {reason or f'{exc.reason}.'}"
        except (OSError, TimeoutError) as exc:
            outcome["error"] = f"Cannot reach {url}: {exc or type(exc).__name__}."
        except ValueError as exc:
            outcome["error"] = f"Unexpected answer from {url}: {exc}."

    worker = threading.Thread(target=fetch, name="update-check", daemon=True)
    worker.start()
    worker.join(UPDATE_TIMEOUT + 0.5)
    if worker.is_alive():
        result["error"] = f"No answer from {url} within {UPDATE_TIMEOUT:g} s."
        return result
    if "error" in outcome:
        result["error"] = outcome["error"]
        return result
    latest = outcome["version"]
    latest_key, current_key = _version_key(latest), _version_key(__version__)
    if latest_key is None or current_key is None:
        result["error"] = f"Cannot compare versions {__version__!r} and {latest!r}."
        return result
    newer = latest_key > current_key
    result["status"] = "update_available" if newer else "up_to_date"
    result["new_version"] = latest if newer else None
    return result


class CheckUpdates:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        settings = self.runtime.settings
        if not settings.check_for_updates:
            raise errors.invalid(
                "Update checking is disabled (YTP_CHECK_FOR_UPDATES=false).",
                status="disabled", current_version=__version__, new_version=None,
            )
        url = settings.update_check_url
        if urlsplit(url).scheme not in {"http", "https"}:
            result = {"status": "error", "current_version": __version__, "new_version": None,
                      "error": f"YTP_UPDATE_CHECK_URL must be an http(s) URL, not {url!r}."}
        else:
            with self.runtime.outside:
                result = check_for_update(url)
        if result["status"] == "error":
            log.warning("update check failed: %s", result["error"])
        elif result["status"] == "update_available":
            self.runtime.bus.message(
                "info", "Update available",
                f"appliance {result['new_version']} is available (running {__version__}).",
            )
        resp.media = result


# --- development diagnostics -------------------------------------------------------------


def _require_dev(runtime: Runtime) -> None:
    if not runtime.settings.dev_mode:
        raise errors.AppError("This endpoint is only available in development mode "
                              "(YTP_DEV_MODE=true).", errors.FORBIDDEN)


def _stack(frame: Any) -> list[str]:
    return [line.rstrip("\n") for line in traceback.format_stack(frame)] if frame else []


async def _loop_tasks() -> list[dict[str, Any]]:
    tasks = []
    for task in asyncio.all_tasks():
        stack: list[str] = []
        for frame in task.get_stack():
            stack.extend(_stack(frame))
        tasks.append({"task": repr(task), "stack": stack})
    return tasks


class DevLoop:
    """The contract shows an asyncio loop's tasks. Requests here are served by threads, and
    the one asyncio loop is the websocket sidecar's: its tasks are reported under ``tasks``,
    and every thread of the worker, with its stack, under ``threads``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def _loop(self) -> tuple[asyncio.AbstractEventLoop | None, list[dict[str, Any]], str]:
        websocket = self.runtime.websocket
        loop = getattr(websocket, "loop", None) or getattr(websocket, "_loop", None)
        if not isinstance(loop, asyncio.AbstractEventLoop) or not loop.is_running():
            return None, [], "The websocket sidecar's loop is not running."
        future = asyncio.run_coroutine_threadsafe(_loop_tasks(), loop)
        try:
            return loop, future.result(LOOP_TIMEOUT), ""
        except TimeoutError:
            future.cancel()
            return loop, [], f"The loop did not answer within {LOOP_TIMEOUT:g} s."

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_dev(self.runtime)
        loop, tasks, note = self._loop()
        frames = sys._current_frames()
        threads = [
            {"name": thread.name, "ident": thread.ident, "daemon": thread.daemon,
             "stack": _stack(frames.get(thread.ident or -1))}
            for thread in threading.enumerate()
        ]
        body: dict[str, Any] = {
            "total_tasks": len(tasks),
            "loop": repr(loop) if loop is not None else None,
            "tasks": tasks,
            "total_threads": len(threads),
            "threads": threads,
        }
        if note:
            body["note"] = note
        resp.media = body


class DevPip:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_dev(self.runtime)
        versions: dict[str, str | None] = {}
        for name in PIP_PACKAGES:
            try:
                versions[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                versions[name] = None
        resp.media = versions


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/system/shutdown", Shutdown())
    app.add_route("/api/system/check-updates", CheckUpdates(runtime))
    app.add_route("/api/dev/loop", DevLoop(runtime))
    app.add_route("/api/dev/pip", DevPip(runtime))


# --- OpenAPI (the rule: appliance/api/openapi.py) ----------------------------------------

_update = {
    "type": "object",
    "required": ["status", "current_version", "new_version"],
    "properties": {
        "status": {"enum": ["up_to_date", "update_available", "error"]},
        "current_version": {"type": "string"},
        "new_version": {"type": ["string", "null"],
                        "description": "Only when status is update_available."},
        "error": {"type": "string", "description": "Why, when status is error."},
    },
}
_disabled = {
    "type": "object",
    "required": ["error", "code", "status", "current_version", "new_version"],
    "properties": {
        "error": {"type": "string"},
        "code": {"const": errors.INVALID_REQUEST},
        "status": {"const": "disabled"},
        "current_version": {"type": "string"},
        "new_version": {"type": "null"},
    },
}
_stack_lines = {"type": "array", "items": {"type": "string"}}
_dev_loop = {
    "type": "object",
    "required": ["total_tasks", "loop", "tasks", "total_threads", "threads"],
    "properties": {
        "total_tasks": {"type": "integer"},
        "loop": {"type": ["string", "null"],
                 "description": "The websocket sidecar's asyncio loop (null when not running)."},
        "tasks": {"type": "array", "items": {
            "type": "object", "required": ["task", "stack"],
            "properties": {"task": {"type": "string"}, "stack": _stack_lines}}},
        "total_threads": {"type": "integer"},
        "threads": {"type": "array", "items": {
            "type": "object", "required": ["name", "ident", "daemon", "stack"],
            "properties": {"name": {"type": "string"}, "ident": {"type": ["integer", "null"]},
                           "daemon": {"type": "boolean"}, "stack": _stack_lines}}},
        "note": {"type": "string", "description": "Why tasks is empty, when it is."},
    },
}
_dev_only = error("Not in development mode (YTP_DEV_MODE=false).")

PATHS: dict[str, dict[str, Any]] = {
    "/api/system/shutdown": {"post": {
        "tags": ["system"],
        "operationId": "systemShutdown",
        "summary": "Stop the application (the contract's native mode only: always 400 here)",
        "description": "The contract allows shutdown only in its native (desktop window) "
                       "mode. This service has no native mode — it runs under gunicorn, "
                       "normally as a systemd unit — so this always answers 400 with the "
                       "reason; stop it with `systemctl stop appliance` or SIGTERM.",
        "responses": {"400": error("Not running in native mode (always).")},
    }},
    "/api/system/check-updates": {"post": {
        "tags": ["system"],
        "operationId": "checkUpdates",
        "summary": "Compare the installed version with the newest release",
        "description": "Off by default (these machines often have no internet): 400 with "
                       "`status: disabled` unless YTP_CHECK_FOR_UPDATES=true. When on, reads "
                       "the newest release from YTP_UPDATE_CHECK_URL (PyPI's JSON API, "
                       "`info.version`) and answers at once: `up_to_date`, "
                       "`update_available` (also sent to websocket clients as `log_info`), "
                       "or `error` with the reason — never a wait over 3 s.",
        "responses": {
            "200": json_response("The result of the check.", _update),
            "400": json_response("Update checking is disabled.", _disabled),
            "503": WAITING_OUTSIDE,
        },
    }},
    "/api/dev/loop": {"get": {
        "tags": ["system"],
        "operationId": "devLoop",
        "summary": "Development: the websocket loop's tasks and every thread's stack",
        "description": "Requests are served by threads; the one asyncio loop is the "
                       "websocket sidecar's. Its tasks are under `tasks`, and every thread "
                       "of the worker, with its stack, under `threads`.",
        "responses": {"200": json_response("Tasks and threads.", _dev_loop),
                      "403": _dev_only},
    }},
    "/api/dev/pip": {"get": {
        "tags": ["system"],
        "operationId": "devPip",
        "summary": "Development: installed versions of the key packages (null: not installed)",
        "responses": {
            "200": json_response("Package → version.", {
                "type": "object", "additionalProperties": {"type": ["string", "null"]},
                "examples": [{"falcon": "4.4.0", "apprise": None}]}),
            "403": _dev_only,
        },
    }},
}
