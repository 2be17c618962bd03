"""yt-dlp's option table, made once per test process and put in each service's config folder
as a service that started before keeps it: without it, every start makes it in a process
that imports yt-dlp (0.3-0.5 s of CPU, and the start waits for it). A first start's making
of it is test_option_table's."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from appliance.engine.option_table import FILE, MAKE, MAKE_TIMEOUT, tables

_made: dict[str, bytes] = {}


def keep_option_table(config: Path) -> None:
    """Put this interpreter's yt-dlp's table in the config folder ``config``."""
    version = tables.version()
    if version not in _made:
        _made[version] = subprocess.run(MAKE, capture_output=True, check=True,
                                        timeout=MAKE_TIMEOUT).stdout
    with contextlib.suppress(OSError):  # a folder a test made unusable: the service says so
        config.mkdir(parents=True, exist_ok=True)
        (config / FILE.format(version=version)).write_bytes(_made[version])
