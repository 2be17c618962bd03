"""Flasharr's ``GET|PUT /api/settings``: the settings that change while the service runs,
under Flasharr's names (the rest of its view: flasharr.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import falcon

from .. import errors, events
from ..config import Settings, SettingsError, pinned_by, save_settings, with_changes
from ..engine.options import check_template
from ..runtime import Runtime
from .flasharr import _SUCCESS
from .requests import json_object
from .schemas import error, json_body, json_response

# Flasharr's setting names → ours. These are the settings that change while the service runs.
SETTING_NAMES = {
    "max_concurrent_downloads": "max_workers",
    "max_downloads_per_site": "max_workers_per_extractor",
    "download_directory": "download_path",
    "output_template": "output_template",
    "stall_timeout": "stall_timeout",
}
API_NAMES = {setting: name for name, setting in SETTING_NAMES.items()}  # for refusals


class SettingsResource:
    """``GET|PUT /api/settings``. A change applies at once and is saved in
    ``<config_path>/settings.json`` (wins over config.yml after a restart); a setting given in
    the environment (``YTP_…``) is pinned: PUT answers 409."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def view(self) -> dict[str, Any]:
        settings = self.runtime.settings
        out: dict[str, Any] = {}
        for name, ours in SETTING_NAMES.items():
            value = getattr(settings, ours)
            out[name] = str(value) if isinstance(value, Path) else value
        out["auth_enabled"] = self.runtime.auth.enabled
        out["cors_origins"] = list(settings.cors_origins)
        out["pinned"] = {name: pin for name, ours in SETTING_NAMES.items()
                         if (pin := pinned_by(settings, ours))}
        # Today's Flasharr reads its settings nested; the flat names stay for the seed.
        out["downloads"] = {"directory": out["download_directory"],
                            "max_concurrent": out["max_concurrent_downloads"]}
        return out

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.view()

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _flat(json_object(req, self.runtime.settings.max_body))
        if not body:
            raise errors.invalid(f"No settings given; these can change: "
                                 f"{', '.join(SETTING_NAMES)}.")
        unknown = sorted(set(body) - SETTING_NAMES.keys())
        if unknown:
            raise errors.invalid(f"These settings cannot be changed here: {', '.join(unknown)}. "
                                 f"These can: {', '.join(SETTING_NAMES)}.")
        changes = {SETTING_NAMES[name]: _checked(name, value) for name, value in body.items()}

        def edit(current: Settings) -> Settings:
            for name in body:
                pin = pinned_by(current, SETTING_NAMES[name])
                if pin:
                    raise errors.AppError(
                        f"{name} is pinned by {pin}, which wins over changes made here; "
                        f"unset {pin} to change it through the API.", errors.CONFLICT)
            try:
                updated = with_changes(current, changes, API_NAMES)
            except SettingsError as exc:
                raise errors.invalid(str(exc)) from None
            if "download_path" in changes:
                _check_folder(updated.download_path)
            try:
                save_settings(current.config_path, {k: getattr(updated, k) for k in changes})
            except OSError as exc:
                raise errors.AppError(f"Could not save the settings: {exc}.",
                                      errors.INTERNAL_ERROR) from None
            return updated

        # One swap reaches every component: they all read the runtime's settings holder.
        self.runtime.settings_holder.change(edit)
        view = self.view()
        self.runtime.bus.publish(events.CONFIG_UPDATE,
                                 {"feature": "settings", "action": "update", "data": view})
        resp.media = {"success": True}


NESTED = {"directory": "download_directory", "max_concurrent": "max_concurrent_downloads"}


def _flat(body: dict[str, Any]) -> dict[str, Any]:
    """Today's Flasharr nests ``downloads: {directory, max_concurrent}``; the seed is flat."""
    if "downloads" not in body:
        return body
    nested = body.pop("downloads")
    if not isinstance(nested, dict) or not set(nested) <= NESTED.keys():
        raise errors.invalid(f"downloads must be an object with {', '.join(NESTED)}.")
    return {**body, **{NESTED[name]: value for name, value in nested.items()}}


_LIMITS = {"max_concurrent_downloads": (1, 64), "max_downloads_per_site": (1, 64)}


def _checked(name: str, value: Any) -> Any:
    """JSON types as they are (no "3" for 3), ranges as the settings declare them."""
    if name in _LIMITS:
        low, high = _LIMITS[name]
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 2.0 is a whole number in JSON
        if not isinstance(value, int) or isinstance(value, bool):
            raise errors.invalid(f"{name} must be a whole number.")
        if not low <= value <= high:
            raise errors.invalid(f"{name} must be between {low} and {high}.")
        return value
    if name == "stall_timeout":
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 5:
            raise errors.invalid("stall_timeout must be a number of seconds, at least 5.")
        return float(value)
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise errors.invalid(f"{name} must be a non-empty string.")
    if name == "output_template":
        return check_template(value)
    path = Path(value.strip()).expanduser()
    if not path.is_absolute():
        raise errors.invalid("download_directory must be an absolute path.")
    return str(path)


def _check_folder(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise errors.invalid(f"download_directory: cannot create {path}: "
                             f"{exc.strerror or exc}.") from None
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise errors.invalid(f"download_directory: {path} is not a writable folder.")


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/settings", SettingsResource(runtime))


# --- OpenAPI 3.1 path items -------------------------------------------------------------

_SETTINGS = {
    "type": "object",
    "properties": {
        "max_concurrent_downloads": {"type": "integer", "minimum": 1, "maximum": 64,
                                     "description": "YTP_MAX_WORKERS"},
        "max_downloads_per_site": {"type": "integer", "minimum": 1, "maximum": 64,
                                   "description": "YTP_MAX_WORKERS_PER_EXTRACTOR"},
        "download_directory": {"type": "string", "description": "YTP_DOWNLOAD_PATH: an "
                               "absolute path; applies to downloads that start later."},
        "output_template": {"type": "string", "description": "YTP_OUTPUT_TEMPLATE"},
        "stall_timeout": {"type": "number", "minimum": 5, "description": "YTP_STALL_TIMEOUT"},
    },
}
_NESTED = {"type": "object", "additionalProperties": False,
           "description": "Today's Flasharr form of two of the settings.",
           "properties": {"directory": _SETTINGS["properties"]["download_directory"],
                          "max_concurrent": _SETTINGS["properties"]["max_concurrent_downloads"]}}


PATHS: dict[str, dict[str, Any]] = {
    "/api/settings": {
        "get": {
            "tags": ["flasharr"], "summary": "The settings that can change while running",
            "responses": {"200": json_response("Current values; pinned names the ones fixed "
                                               "by an environment variable.", {
                **_SETTINGS,
                "required": list(SETTING_NAMES),
                "properties": {
                    **_SETTINGS["properties"],
                    "auth_enabled": {"type": "boolean"},
                    "cors_origins": {"type": "array", "items": {"type": "string"}},
                    "pinned": {"type": "object", "additionalProperties": {"type": "string"}},
                    "downloads": _NESTED,
                }})},
        },
        "put": {
            "tags": ["flasharr"],
            "summary": "Change settings: applied at once and kept across restarts",
            "requestBody": json_body({**_SETTINGS, "minProperties": 1,
                                      "properties": {**_SETTINGS["properties"],
                                                     "downloads": _NESTED},
                                      "additionalProperties": False}),
            "responses": {
                "200": json_response("Applied and saved in settings.json.", _SUCCESS),
                "400": error("Unknown setting, wrong type, out of range, or a folder that "
                             "cannot be written."),
                "409": error("The setting is pinned by a YTP_ environment variable."),
            },
        },
    },
}
