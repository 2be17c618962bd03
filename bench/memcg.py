"""A memory cgroup for a benchmark's server: v2 ``memory.max`` or v1
``memory.limit_in_bytes``, made under the cgroup this script runs in, when the machine lets
it (root, a writable hierarchy). ``MemoryCgroup.make`` says why when it cannot."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _own_path(controller: str) -> tuple[Path, bool] | None:
    """This process's cgroup folder for ``controller``, and whether it is v2."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if number == "0" and (CGROUP_ROOT / "cgroup.controllers").exists():
            return CGROUP_ROOT / path.lstrip("/"), True
        if controller in controllers.split(","):
            return CGROUP_ROOT / controller / path.lstrip("/"), False
    return None


class MemoryCgroup:
    def __init__(self, path: Path, v2: bool) -> None:
        self.path, self.v2 = path, v2

    @classmethod
    def make(cls, name: str, limit: int) -> MemoryCgroup | str:
        """A new cgroup limited to ``limit`` bytes, or the reason there is none."""
        own = _own_path("memory")
        if own is None:
            return "no memory cgroup controller on this machine"
        parent, v2 = own
        path = parent / name
        try:
            path.mkdir()
        except OSError as exc:
            return f"cannot make a cgroup under {parent}: {exc.strerror}"
        group = cls(path, v2)
        try:
            group._write("memory.max" if v2 else "memory.limit_in_bytes", str(limit))
        except OSError as exc:
            group.remove()
            return f"cannot set a memory limit in {path}: {exc.strerror}"
        return group

    def _write(self, name: str, value: str) -> None:
        (self.path / name).write_text(value)

    def _read(self, name: str) -> str:
        with contextlib.suppress(OSError):
            return (self.path / name).read_text()
        return ""

    def wrapper(self, folder: Path, python: str) -> str:
        """A script that enters this cgroup and then runs ``python`` with its arguments, so
        that every process the server starts is inside from its first byte."""
        script = folder / "in-cgroup.sh"
        script.write_text(f'#!/bin/sh\necho $$ > "{self.path}/cgroup.procs"\n'
                          f'exec "{python}" "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        return str(script)

    def oom_kills(self) -> int:
        key = "oom_kill"
        text = self._read("memory.events" if self.v2 else "memory.oom_control")
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
        return 0

    def peak(self) -> int:
        """Bytes at the peak (page cache included), where the kernel tells."""
        text = self._read("memory.peak" if self.v2 else "memory.max_usage_in_bytes").strip()
        return int(text) if text.isdigit() else 0

    def remove(self) -> None:
        for pid in self._read("cgroup.procs").split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        with contextlib.suppress(OSError):
            self.path.rmdir()
