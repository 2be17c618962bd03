"""A limit of processes (and threads) on running processes, as systemd's ``TasksMax=`` or a
user's ``ulimit -u`` puts one on a service: a fork (or a thread's start) past it fails with
EAGAIN. Made with the kernel's pids cgroup, which holds root too (``ulimit -u`` does not, and
the tests run as root); the processes go back where they were when it is lifted."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# cgroup v1's pids hierarchy; under cgroup v2 alone it is the unified tree.
ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))


def _root() -> Path:
    for root in ROOTS:
        if (root / "cgroup.procs").is_file() and (
                root.name == "pids" or "pids" in (root / "cgroup.controllers").read_text()):
            return root
    pytest.fail("this test needs the kernel's pids cgroup, writable (run it as root)")


class PidsLimit:
    """Processes held to a count of tasks: ``room`` more than they have now, at ``hold``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def hold(self, room: int = 0) -> None:
        current = int((self.folder / "pids.current").read_text())
        (self.folder / "pids.max").write_text(str(current + room))

    def lift(self) -> None:
        (self.folder / "pids.max").write_text("max")

    def refused(self) -> int:
        """Forks (or threads) refused so far."""
        for line in (self.folder / "pids.events").read_text().splitlines():
            name, _, count = line.partition(" ")
            if name == "max":
                return int(count)
        return 0


@contextlib.contextmanager
def pids_limit(pids: list[int]) -> Iterator[PidsLimit]:
    """``pids`` (with every thread and every process they start from now on) in a cgroup of
    their own, no limit yet."""
    root = _root()
    folder = root / f"appliance-test-{os.getpid()}-{pids[0]}"
    folder.mkdir()
    try:
        for pid in pids:
            (folder / "cgroup.procs").write_text(str(pid))
        yield PidsLimit(folder)
    finally:
        (folder / "pids.max").write_text("max")
        for pid in (folder / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):  # it ended meanwhile
                (root / "cgroup.procs").write_text(pid)
        folder.rmdir()
