"""Which folders may be the download folder.

Whatever a download writes lands in the download folder, so the folder itself must not be a
place where a written file changes what the service or the system does: the config folder
(``config.yml`` could switch the console on), the temp folder, the program's own installation
(a ``.pth`` file there runs at the next start), a system folder, or a home folder (``.ssh``,
``.bashrc``). Decided on resolved paths, both ways: the download folder may not be, contain or
lie inside any of them (system and home folders: may not be or contain them; a folder inside
``/home/pi`` or ``/var/lib`` is what a download folder usually is), nor lie inside a home
folder's hidden folders: ``~/.ssh`` (``authorized_keys``), ``~/.config`` (autostart, systemd
user units), ``~/.local`` (a ``.pth`` in the user's site-packages) are its programs' settings
and code, and a download named there let a site's file in.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import sys
from collections.abc import Iterator
from pathlib import Path

# Trees where no download may land (the folder may not lie inside them either).
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
                "/run", "/sbin", "/sys", "/usr")
# Folders that are fine to download *inside* but not to be the download folder themselves.
SYSTEM_FOLDERS = ("/", "/home", "/root", "/var", "/var/lib", "/var/log", "/srv", "/opt", "/mnt",
                  "/media", "/tmp", "/var/tmp")


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def _installation() -> Iterator[tuple[str, Path]]:
    yield "the program's installation", _real(Path(__file__).parent)
    spec = importlib.util.find_spec("yt_dlp")  # found, not imported: start-up stays light
    if spec is not None and spec.origin:
        yield "yt-dlp's installation", _real(Path(spec.origin).parent)
    yield "the Python environment", _real(sys.prefix)
    yield "the Python installation", _real(sys.base_prefix)


def _homes() -> Iterator[Path]:
    for entry in pwd.getpwall():
        home = entry.pw_dir
        if home and home != "/" and os.path.isabs(home):
            yield _real(home)


def _related(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def download_folder_problem(download: Path, config: Path, temp: Path) -> str | None:
    """Why ``download`` cannot be the download folder; None when it can."""
    folder = _real(download)
    for name, other in (("the config folder", config), ("the temp folder", temp),
                        *_installation()):
        if _related(folder, _real(other)):
            return f"{folder} is, contains or lies inside {name} ({_real(other)})"
    for tree in SYSTEM_TREES:
        if _related(folder, _real(tree)):
            return f"{folder} is, contains or lies inside the system folder {tree}"
    homes = list(_homes())
    for special in (*map(_real, SYSTEM_FOLDERS), *homes):
        if folder == special or special.is_relative_to(folder):
            return f"{folder} is or contains {special}, a system or home folder"
    for home in homes:
        if folder.is_relative_to(home) and (hidden := _hidden_part(folder, home)):
            return f"{folder} lies inside {hidden}, a home folder's hidden folder"
    return None


def _hidden_part(folder: Path, home: Path) -> Path | None:
    """The first folder below ``home`` on the way to ``folder`` whose name begins with a dot."""
    below = home
    for part in folder.relative_to(home).parts:
        below /= part
        if part.startswith("."):
            return below
    return None
