"""The JavaScript runtime yt-dlp runs YouTube's challenges in: deno from the virtual
environment (the ``deno`` wheel the install brings), else a deno or a node on PATH that is new
enough for yt-dlp. Found once; every download and info job names it to yt-dlp explicitly
(requests cannot choose one: ``--js-runtimes`` is refused by the option policy)."""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# yt-dlp's own minimums (yt_dlp/utils/_jsruntime.py).
MINIMUM = {"deno": (2, 3, 0), "node": (22, 0, 0)}
VERSION = {"deno": re.compile(r"^deno (\d+(?:\.\d+)*)"), "node": re.compile(r"^v(\d+(?:\.\d+)*)")}


def _version(path: str, name: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = VERSION[name].match(out.strip())
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def _candidates() -> list[tuple[str, str]]:
    venv_deno = Path(sys.executable).parent / "deno"
    found = [("deno", str(venv_deno))] if venv_deno.exists() else []
    for name in ("deno", "node"):
        path = shutil.which(name)
        if path:
            found.append((name, path))
    return found


@functools.cache
def js_runtime() -> dict[str, Any] | None:
    """``{"name", "path", "version", "solver"}`` of the runtime in use, or None (YouTube
    downloads may then fail on its challenges; other sites do not need one)."""
    for name, path in _candidates():
        version = _version(path, name)
        if version is not None and version >= MINIMUM[name]:
            try:
                solver = importlib.metadata.version("yt-dlp-ejs")
            except importlib.metadata.PackageNotFoundError:
                solver = None
            return {"name": name, "path": path, "version": ".".join(map(str, version)),
                    "solver": solver}
    log.warning("no JavaScript runtime for yt-dlp (deno >= 2.3 or node >= 22): YouTube "
                "downloads may fail; ./bootstrap.sh installs deno")
    return None


def ytdlp_param() -> dict[str, dict[str, str]] | None:
    """yt-dlp's ``js_runtimes`` parameter for the runtime in use."""
    runtime = js_runtime()
    return {runtime["name"]: {"path": runtime["path"]}} if runtime else None
