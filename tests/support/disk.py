"""Watching what the process asks to be put on the disk."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest


class DiskSyncs:
    """Records the files under ``under`` that this process syncs (fsync, fdatasync)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, under: Path) -> None:
        self.under = str(under)
        self.paths: list[str] = []
        for name in ("fsync", "fdatasync"):
            monkeypatch.setattr(os, name, self._recording(getattr(os, name)))

    def _recording(self, real: Callable[[int], None]) -> Callable[[int], None]:
        def sync(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            if path.startswith(self.under):
                self.paths.append(path)
            real(fd)

        return sync

    def take(self) -> list[str]:
        """The paths synced since the last call."""
        taken, self.paths = self.paths, []
        return taken
