"""A crash of ``appliance tui``: its details go to a file of the person's own, and the
terminal gets two short lines (appliance.tui.app)."""

from __future__ import annotations

import logging
import os
import time
import traceback
from pathlib import Path

log = logging.getLogger(__name__)


def crash_log_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "appliance" / "tui.log"


def write_crash_log(error: BaseException | None) -> Path:
    path = crash_log_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The person's own: a traceback may hold the service's address and their paths.
        with open(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a") as fh:
            fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + "appliance tui crashed\n")
            if error is not None:
                fh.writelines(traceback.format_exception(error))
    except OSError:
        log.exception("cannot write %s", path)
    return path
