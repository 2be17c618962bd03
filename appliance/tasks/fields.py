"""A task's fields, checked one by one with the policy that checks an item's: the folder
stays inside the download folder, the template's text too, ``cli`` goes through yt-dlp's
parser and the one option policy (``engine.options``), the URL and cookies as an item's."""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from ..engine.options import check_template, parse_cli, resolve_folder
from ..engine.presets import Presets
from ..engine.requests import MAX_COOKIES_LENGTH, check_cookies, check_url
from ..errors import INVALID_REQUEST, invalid
from ..store.tasks import TASK_FIELDS
from .cron import check_timer

# Fields of a task as read that a client may send back unchanged (PUT of a read task).
READ_ONLY = frozenset({"id", "created_at", "last_run_at", "last_status", "last_error",
                       "last_found", "last_queued", "next_run_at", "failures", "running",
                       "mark_pending"})
MAX_CONFIG_BYTES = 64 * 1024
MAX_KEEP = 1_000_000
MAX_NAME = 100  # characters of a task's name
DEFAULTS: dict[str, Any] = {
    "timer": "", "preset": "", "folder": "", "template": "", "cli": "", "cookies": "",
    "config": {}, "auto_start": True, "handler_enabled": True, "enabled": True,
    "published_after": "", "keep_newest": 0, "keep_days": 0,
}


@dataclasses.dataclass(frozen=True)
class Context:
    download_path: Path
    presets: Presets


def check_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > MAX_NAME:
        raise invalid(f"name is required (1 to {MAX_NAME} characters).")
    if name in {".", ".."} or any(c in name for c in "/\\") or not name.isprintable():
        raise invalid(f"name '{name[:100]}' must be a plain name: no '/', '\\', control "
                      "characters, and not '.' or '..'.")
    return name


def _preset(value: str, context: Context) -> str:
    value = value.strip()
    if value:
        context.presets.check(value, INVALID_REQUEST)
    return value


def _folder(value: str, context: Context) -> str:
    value = value.strip()
    resolve_folder(context.download_path, value)
    return value


def check_cli(cli: str) -> str:
    options = parse_cli(cli)
    refused = list(options.removed)
    if options.archive:
        refused.append("--download-archive (a preset names the archive)")
    if refused:
        raise invalid(f"These options are not allowed in a task: {', '.join(refused)}.")
    return shlex.join(options.args)


def _cookies(value: str) -> str:
    if len(value) > MAX_COOKIES_LENGTH:
        raise invalid("cookies are larger than 1 MiB.")
    if value:
        check_cookies(value)
    return value


def _config(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("config must be an object.")
    if len(orjson.dumps(value)) > MAX_CONFIG_BYTES:
        raise invalid(f"config is larger than {MAX_CONFIG_BYTES // 1024} KiB.")
    return value


def _date(value: str) -> str:
    if not value.strip():
        return ""
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise invalid("published_after must be a date like 2024-01-31.") from None


def flag(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise invalid(f"{name} must be true or false.")
        return value
    return check


def _count(name: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_KEEP:
            raise invalid(f"{name} must be a whole number from 0 to {MAX_KEEP}.")
        return value
    return check


# Checks of text fields (a string is required first) and of the others; each returns the
# value as stored. Those that take the context are marked.
TEXT_CHECKS: dict[str, Callable[..., Any]] = {
    "name": check_name, "url": check_url, "timer": check_timer, "template": check_template,
    "cli": check_cli, "cookies": _cookies, "published_after": _date,
}
CONTEXT_CHECKS: dict[str, Callable[[str, Context], str]] = {"preset": _preset,
                                                            "folder": _folder}
OTHER_CHECKS: dict[str, Callable[[Any], Any]] = {
    "config": _config, "auto_start": flag("auto_start"),
    "handler_enabled": flag("handler_enabled"), "enabled": flag("enabled"),
    "keep_newest": _count("keep_newest"), "keep_days": _count("keep_days"),
}


def check_task(values: Any, context: Context, *, partial: bool) -> dict[str, Any]:
    """The checked, stored fields of a task body (``partial``: of a patch)."""
    if not isinstance(values, dict):
        raise invalid("A task must be a JSON object.")
    unknown = sorted(set(values) - set(TASK_FIELDS) - READ_ONLY - {"mark"})
    if unknown:
        raise invalid(f"Unknown task field(s): {', '.join(unknown)}.")
    clean: dict[str, Any] = {}
    for name in TASK_FIELDS:
        value = values.get(name)
        if value is None:
            continue
        if (name in TEXT_CHECKS or name in CONTEXT_CHECKS) and not isinstance(value, str):
            raise invalid(f"{name} must be a string.")
        if name in CONTEXT_CHECKS:
            clean[name] = CONTEXT_CHECKS[name](value, context)
        elif name in TEXT_CHECKS:
            clean[name] = TEXT_CHECKS[name](value)
        else:
            clean[name] = OTHER_CHECKS[name](value)
    if not partial:
        for name in ("name", "url"):
            if not clean.get(name):
                raise invalid(f"{name} is required.")
        clean = {**DEFAULTS, **clean}
    return clean
