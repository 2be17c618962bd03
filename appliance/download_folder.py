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
and code, and a download named there let a site's file in. And decided on where each path is
on its disk (``mount_table``) too: a bind mount of the config folder, or the system's disk
mounted a second time, is the same folder under another path.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from . import mount_table
from .mount_table import Place

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


Places = tuple[Place, Place]  # a path as it is written, and where the mount table puts it


def _places(path: Path, table: list[tuple[PurePosixPath, Place]]) -> Places:
    return mount_table.place(path, []), mount_table.place(path, table)


def _within(a: Place, b: Place) -> bool:
    """Whether ``a`` is or lies inside ``b``."""
    return a[0] == b[0] and a[1].is_relative_to(b[1])


def _related(a: Places, b: Places) -> bool:
    return any(_within(x, y) or _within(y, x) for x, y in zip(a, b, strict=True))


def _holds(a: Places, b: Places) -> bool:
    """Whether ``a`` is or contains ``b``."""
    return any(_within(y, x) for x, y in zip(a, b, strict=True))


def _through_a_mount(folder: Path, other: Path) -> str:
    """What a refusal adds when only the mount table relates the two paths."""
    if folder.is_relative_to(other) or other.is_relative_to(folder):
        return ""
    return ", the same folder through another mount of its disk"


def download_folder_problem(download: Path, config: Path, temp: Path) -> str | None:
    """Why ``download`` cannot be the download folder; None when it can."""
    table = mount_table.mounts()
    folder = _real(download)
    here = _places(folder, table)
    for name, other in (("the config folder", config), ("the temp folder", temp),
                        *_installation()):
        other = _real(other)
        if _related(here, _places(other, table)):
            return (f"{folder} is, contains or lies inside {name} ({other}"
                    f"{_through_a_mount(folder, other)})")
    for tree in SYSTEM_TREES:
        real_tree = _real(tree)
        if _related(here, _places(real_tree, table)):
            return (f"{folder} is, contains or lies inside the system folder {tree}"
                    f"{_through_a_mount(folder, real_tree)}")
    homes = list(_homes())
    for special in (*map(_real, SYSTEM_FOLDERS), *homes):
        if _holds(here, _places(special, table)):
            return (f"{folder} is or contains {special}, a system or home folder"
                    f"{_through_a_mount(folder, special)}")
    for home in homes:
        for mine, its in zip(here, _places(home, table), strict=True):
            if _within(mine, its) and (hidden := _hidden_part(mine[1], its[1])):
                return (f"{folder} lies inside {home / hidden}, a home folder's hidden folder"
                        f"{_through_a_mount(folder, home)}")
    return None


def _hidden_part(path: PurePosixPath, home: PurePosixPath) -> PurePosixPath | None:
    """The first folder below ``home`` on the way to ``path`` whose name begins with a dot,
    relative to ``home``."""
    below = PurePosixPath()
    for part in path.relative_to(home).parts:
        below /= part
        if part.startswith("."):
            return below
    return None
