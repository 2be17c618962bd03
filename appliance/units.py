"""Sizes and durations as people read them, for messages and notifications."""

from __future__ import annotations

from typing import Any


def human_size(size: Any) -> str | None:
    if not isinstance(size, int | float) or size <= 0:
        return None
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return None  # pragma: no cover - the loop always returns


def human_duration(seconds: Any) -> str | None:
    if not isinstance(seconds, int | float) or seconds <= 0:
        return None
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes = round(total / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"
