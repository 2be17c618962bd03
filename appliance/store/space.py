"""The free space of the database's disk, in words. Plain ``shutil``: ``store.backups`` uses
it, and the command line and the gunicorn master load that module without the ORM."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..units import human_size

# Free bytes under which a disk is full for SQLite: opening a database in WAL mode makes its
# 32 KiB index and the first write its log.
FULL_BELOW = 1 << 20


def free_space(folder: Path) -> str:
    """``folder``'s disk's free space in words: "12 KiB free"."""
    try:
        return f"{human_size(shutil.disk_usage(folder).free) or 'nothing'} free"
    except OSError:
        return "free space unknown"


def disk_full(folder: Path) -> bool:
    """Whether ``folder``'s disk has no room left for SQLite's files (its log, its index)."""
    try:
        return shutil.disk_usage(folder).free < FULL_BELOW
    except OSError:
        return False
