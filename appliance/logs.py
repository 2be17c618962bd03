"""Logging set-up: one line per event with time, level, logger and message, on stderr (the
journal under systemd)."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_appliance", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._appliance = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    # Pony logs every SQL statement at INFO when its own logger is on; keep it quiet.
    logging.getLogger("pony").setLevel(logging.WARNING)
