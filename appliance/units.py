"""Sizes and durations as people read them, for messages and notifications."""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> float | None:
    """``value`` (a number, or its text) as a float a person can read: site metadata holds
    any, infinity, NaN or a whole number of 400 digits, which ``round`` or ``float`` raise on."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def human_size(size: Any) -> str | None:
    value = finite(size) if isinstance(size, int | float) else None
    if value is None or value <= 0:
        return None
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return None  # pragma: no cover - the loop always returns


def human_duration(seconds: Any) -> str | None:
    value = finite(seconds) if isinstance(seconds, int | float) else None
    if value is None or value <= 0:
        return None
    total = round(value)
    if total < 60:
        return f"{total} s"
    minutes = round(total / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"
