"""One service per config folder, and the identity it keeps.

``appliance serve`` holds an exclusive ``flock`` on ``<config>/appliance.lock`` for its whole
life (the gunicorn worker, a fork, shares it; download processes are started with their
descriptors closed and do not). ``appliance db restore`` takes the same lock: it refuses while
the service runs, and a service cannot start in the middle of a restore. The kernel drops the
lock when the process ends, however it ends, so a crash leaves no stale lock behind.

``<config>/instance_id`` names the service for clients that must tell one appliance from
another across restarts, address changes and upgrades (Home Assistant's unique id, the
zeroconf announcement). It is made once, on first start, and kept with the database.
"""

from __future__ import annotations

import fcntl
import os
import re
import uuid
from pathlib import Path

from .atomic import write_atomic
from .setting_fields import ENV_PREFIX, SettingsError

LOCK_NAME = "appliance.lock"
ID_NAME = "instance_id"
_ID_FORM = re.compile(r"[0-9a-f]{32}")


class AlreadyRunning(Exception):
    """Another process holds the config folder's lock."""


def lock_path(config_path: Path) -> Path:
    return config_path / LOCK_NAME


def hold_lock(config_path: Path) -> int:
    """Take the config folder's lock and return its descriptor (closing it releases the
    lock); AlreadyRunning when another process has it, a settings error when the file cannot
    be opened (a folder by that name, a file of another user's): a traceback and a restart
    would not help."""
    path = lock_path(config_path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise SettingsError(f"{ENV_PREFIX}CONFIG_PATH: cannot open {path}: "
                            f"{exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunning(f"the service is running with the config folder {config_path} "
                             f"(a process holds {path})") from None
    return fd


def instance_id(config_path: Path) -> str:
    """The service's id (32 hex digits), made and stored on first use. A file that does not
    hold one (emptied, edited by hand) is replaced: an id must stay an id."""
    path = config_path / ID_NAME
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    if _ID_FORM.fullmatch(text):
        return text
    new = uuid.uuid4().hex
    write_atomic(path, new + "\n")
    return new
