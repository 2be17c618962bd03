"""What a piece of work costs, counted in the Python functions it calls (``sys.setprofile``),
not timed: a bound on work that scales holds on any machine under any load."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def calls(work: Callable[[], T]) -> tuple[int, T]:
    """How many Python functions ``work()`` calls, and what it returns."""
    counted = [0]

    def profile(_frame: object, event: str, _arg: object) -> None:
        if event == "call":
            counted[0] += 1

    sys.setprofile(profile)
    try:
        result = work()
    finally:
        sys.setprofile(None)
    return counted[0], result
