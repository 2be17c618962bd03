"""The child's side of ``common.in_checkout``: a measurement run in a fresh interpreter whose
``appliance`` is another checkout's. Imports nothing of this repository (``common`` puts this
checkout first on ``sys.path``)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def main(parent: Callable[[], int], measure: Callable[..., Any],
         *readers: Callable[[str], Any]) -> int:
    """A script's ``__main__``: with ``--measure``, ``measure`` of the arguments after it
    (each made by its reader), printed as one line of JSON for the parent; else ``parent()``,
    the script itself."""
    if sys.argv[1:2] != ["--measure"]:
        return parent()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    values = [read(text) for read, text in zip(readers, sys.argv[2:], strict=True)]
    sys.stdout.write(json.dumps(measure(*values)) + "\n")
    return 0


def runtime(root: Path) -> Any:
    """The service's runtime (not started: its start may be measured) on the folders of
    ``root``, its database ``root/config/appliance.db``; no download process, no websocket;
    requests from falcon's test client allowed."""
    from appliance.config import load_settings
    from appliance.runtime import Runtime

    return Runtime(load_settings({
        "YTP_CONFIG_PATH": str(root / "config"), "YTP_DOWNLOAD_PATH": str(root / "dl"),
        "YTP_TEMP_PATH": str(root / "tmp"), "YTP_WARM_WORKERS": "0",
        "YTP_ALLOWED_HOSTS": "falconframework.org",  # the test client's Host
        "YTP_YTDLP_INDEX_URL": "http://127.0.0.1:9/simple", "YTP_LOG_LEVEL": "warning",
    }), websocket=False)
