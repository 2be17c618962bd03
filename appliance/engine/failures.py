"""Failures said plainly. yt-dlp reports a full disk or a folder the service may not write as
an errno deep in a message; the person reading the item needs what happened, where, and what
to do. yt-dlp's own words follow in brackets."""

from __future__ import annotations

import errno
import re
import shutil
from pathlib import Path

from ..config import Settings
from ..units import human_size

_ERRNO = re.compile(r"\[Errno (\d+)\]")
# A permission error is about the folders only when yt-dlp was writing a file (a socket can
# be refused with the same errno).
_WRITING = re.compile(r"writ|rename|open for|creat|mkdir|move", re.IGNORECASE)


def explain(message: str, settings: Settings) -> str:
    """``message`` with a plain explanation in front when it is a known failure."""
    found = _ERRNO.search(message)
    code = int(found.group(1)) if found else None
    folders = f"{settings.temp_path} (partial files) and {settings.download_path}"
    if code in (errno.ENOSPC, errno.EDQUOT):  # a job that is no download (those wait: disk_room)
        free = _free(settings.temp_path)
        plain = (f"The disk is full: {free} free in {settings.temp_path}, where a download "
                 f"stays until it is complete. Free some space, then add it again.")
    elif code in (errno.EACCES, errno.EPERM) and _WRITING.search(message):
        plain = (f"The service may not write there: check that the user it runs as owns "
                 f"{folders}.")
    elif code == errno.EROFS:
        plain = f"The disk is read-only: {folders} must be on a writable disk."
    else:
        return message
    return f"{plain} ({message})"


def _free(path: Path) -> str:
    try:
        return human_size(shutil.disk_usage(path).free) or "nothing"
    except OSError:
        return "unknown space"
