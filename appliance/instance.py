"""One service per config folder.

``appliance serve`` holds an exclusive ``flock`` on ``<config>/appliance.lock`` for its whole
life (the gunicorn worker, a fork, shares it; download processes are started with their
descriptors closed and do not). ``appliance db restore`` takes the same lock: it refuses while
the service runs, and a service cannot start in the middle of a restore. The kernel drops the
lock when the process ends, however it ends, so a crash leaves no stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "appliance.lock"


class AlreadyRunning(Exception):
    """Another process holds the config folder's lock."""


def lock_path(config_path: Path) -> Path:
    return config_path / LOCK_NAME


def hold_lock(config_path: Path) -> int:
    """Take the config folder's lock and return its descriptor (closing it releases the
    lock); AlreadyRunning when another process has it."""
    path = lock_path(config_path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunning(f"the service is running with the config folder {config_path} "
                             f"(a process holds {path})") from None
    return fd
