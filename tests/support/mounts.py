"""Small file systems mounted for a test: a disk that fills up, a disk that is read-only.

Real mounts (tmpfs), because the service decides where it may write on resolved paths: a
symlink to /dev/full is, rightly, a path outside the download folder. The tests run as root
(here and in CI); a machine that cannot mount fails the test with the reason, never skips it.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs on ``path`` (made if missing) with mount ``options`` (e.g. ``size=64k``)."""
    path.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path))
    try:
        yield path
    finally:
        _run("umount", "-l", str(path))
