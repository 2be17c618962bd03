"""Small file systems mounted for a test: a disk that fills up, a disk that is read-only, a
disk that is unplugged.

Real mounts (tmpfs), because the service decides where it may write on resolved paths: a
symlink to /dev/full is, rightly, a path outside the download folder. The tests run as root
(here and in CI); a machine that cannot mount fails the test with the reason, never skips it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs on ``path`` (made if missing) with mount ``options`` (e.g. ``size=64k``)."""
    mount(path, options)
    try:
        yield path
    finally:
        if os.path.ismount(path):  # not unplugged by the test
            unplug(path)


@contextlib.contextmanager
def ext4(path: Path, size: str, reserved: int) -> Iterator[Path]:
    """An ext4 file system of ``size`` (an image file beside ``path``, mounted on ``path``
    through a loop device) with ``reserved`` percent of its blocks kept for root, as a Pi's
    SD card or USB disk has them (5 %): no tmpfs keeps any."""
    image = path.with_name(f".{path.name}.img")
    _run("truncate", "-s", size, str(image))
    _run("mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-m", str(reserved), str(image))
    path.mkdir(parents=True, exist_ok=True)
    _run("mount", "-o", "loop", str(image), str(path))
    try:
        yield path
    finally:
        _run("umount", str(path))
        image.unlink()


@contextlib.contextmanager
def removable(path: Path, options: str) -> Iterator[Callable[[], None]]:
    """A disk on ``path`` that can be unplugged (``unplug(path)``) and plugged back with what
    it held (the callable this yields): a tmpfs out of sight, bound onto ``path``."""
    disk = path.with_name(f".{path.name}-disk")
    with tmpfs(disk, options):

        def plug() -> None:
            path.mkdir(parents=True, exist_ok=True)
            _run("mount", "--bind", str(disk), str(path))

        plug()
        try:
            yield plug
        finally:
            if os.path.ismount(path):
                unplug(path)


def mount(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path))


def unplug(path: Path) -> None:
    """Unmount at once, as an unplugged disk goes (files still open on it stay usable)."""
    _run("umount", "-l", str(path))


def fill(folder: Path) -> Path:
    """Write to ``folder``'s disk until it is full; the file that filled it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, bytes(1 << 16))
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler
