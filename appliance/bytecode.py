"""How the service's interpreters run: optimized (``-OO``), their bytecode cached in one folder
of the virtual environment.

``-OO`` leaves docstrings (and asserts) out of the code every process holds for its whole
life: 30 s after start, 4.5 MiB less resident over the master, the worker and the zygote
(0.9 + 2.0 + 1.7), and each forked download process shares the zygote's smaller heap
(``bench/footprint.py``). Such bytecode is cached apart from the usual (``.opt-2.pyc``); pip
writes none, and the standard library's folder is the system's, read-only to the service:
without a cache of their own, every process would compile those modules from source at each
start. So every interpreter of the service caches its bytecode in ``<venv>/bytecode``
(``-X pycache_prefix``), written by the processes that import -- the master, the worker, the
zygote while it warms up, never a download job (``engine/child.py``) -- and, for the yt-dlp
modules a job imports one site at a time, by :func:`compile_ytdlp` when yt-dlp is installed
(``bootstrap.sh``, ``appliance ytdlp update``).

Only a folder no one else may write is used: bytecode there is code the service runs.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

OPTIMIZE = 2
FOLDER = "bytecode"
# Set across the one re-exec of `appliance serve`: never a second one.
REEXEC_MARK = "APPLIANCE_OPTIMIZED"
COMPILE_TIMEOUT = 600.0


def cache_folder(venv: Path | None = None, make: bool = True) -> Path | None:
    """``<venv>/bytecode`` (this interpreter's virtual environment unless told), made if
    missing and ``make``; None outside a virtual environment (the system's Python: its caches
    are the system's business), or when the folder is not there (or cannot be made) or others
    may write to it."""
    venv = Path(sys.prefix) if venv is None else venv
    if not (venv / "pyvenv.cfg").is_file():
        return None
    folder = venv.resolve() / FOLDER
    if not make and not folder.exists():
        return None
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        found = folder.lstat()
    except OSError as exc:
        log.warning("bytecode cache %s cannot be made (%s): interpreters run unoptimized",
                    folder, exc)
        return None
    mine = found.st_uid in (os.getuid(), 0)
    if not stat.S_ISDIR(found.st_mode) or not mine or found.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        log.warning("bytecode cache %s is not a folder only its owner (this user or root) may "
                    "write to: not used, interpreters run unoptimized", folder)
        return None
    return folder


def flags(folder: Path | None) -> list[str]:
    """The interpreter options that run optimized with ``folder`` as the bytecode cache."""
    if folder is None:
        return []
    return ["-" + "O" * OPTIMIZE, "-X", f"pycache_prefix={folder}"]


def inherited() -> list[str]:
    """The options this interpreter runs with, for the interpreters it starts."""
    found = ["-" + "O" * sys.flags.optimize] if sys.flags.optimize else []
    if sys.pycache_prefix:
        found += ["-X", f"pycache_prefix={sys.pycache_prefix}"]
    return found


def reexec_command(arguments: list[str]) -> list[str] | None:
    """The command that runs ``appliance *arguments`` again, optimized; None when this
    interpreter already is (or cannot be: no safe cache)."""
    if os.environ.pop(REEXEC_MARK, None):
        return None
    folder = cache_folder()
    if folder is None or inherited() == flags(folder):
        return None
    os.environ[REEXEC_MARK] = "1"
    # The cache is the service's own: without its writes, each start would compile anew.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    return [sys.executable, *flags(folder), "-m", "appliance", *arguments]


def compile_ytdlp(python: Path | str = sys.executable, make: bool = False) -> None:
    """Compile every module of ``python``'s yt-dlp into its environment's cache, where there
    is one (or ``make`` it): a download job imports its site's extractor as it needs it, and
    may not write its bytecode (``engine/child.py``)."""
    venv = Path(python).absolute().parent.parent
    options = flags(cache_folder(venv, make))
    if not options:
        return
    # Every core, but below the service in the CPU's queue: an update runs while it serves.
    command = [str(python), *options, "-c",
               "import compileall, os, sys, yt_dlp; os.nice(10); sys.exit(not "
               "compileall.compile_dir(os.path.dirname(yt_dlp.__file__), quiet=1, workers=0))"]
    try:
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=COMPILE_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("yt-dlp's bytecode was not compiled (%s): a job compiles its site's "
                    "module itself", exc)
        return
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        log.warning("yt-dlp's bytecode was not all compiled (%s): a job compiles its site's "
                    "module itself", lines[-1] if lines else f"exit {done.returncode}")


if __name__ == "__main__":  # bootstrap.sh, after installing
    logging.basicConfig(level=logging.INFO, format="bytecode: %(message)s")
    compile_ytdlp(make=True)
