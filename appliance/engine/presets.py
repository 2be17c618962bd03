"""Presets known to the engine. Only the built-in ``default`` until presets get their store
(issue 4); callers already go through ``check_preset`` so that change stays here."""

from __future__ import annotations

from typing import Any

from ..errors import NOT_FOUND, AppError

DEFAULT_PRESETS: tuple[dict[str, Any], ...] = (
    {
        "id": 1,
        "name": "default",
        "description": "yt-dlp's own choice of the best formats, with the configured template.",
        "folder": "",
        "template": "",
        "cookies": "",
        "cli": "",
        "default": True,
    },
)


def list_presets() -> list[dict[str, Any]]:
    return [dict(p) for p in DEFAULT_PRESETS]


def check_preset(name: str, code: str = NOT_FOUND) -> str:
    if name not in {p["name"] for p in DEFAULT_PRESETS}:
        raise AppError(f"Preset '{name}' not found.", code)
    return name
