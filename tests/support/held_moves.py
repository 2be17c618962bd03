"""Download processes of this checkout whose steps a test holds open: yt-dlp's move of the
finished files home, held once its first file is home (``moved``), and the process's question
before it moves (``asked``, ``child.Channel.ask``).

The service starts its download processes from the installed package (``launcher.CHILD``:
``python -I``, which reads no PYTHONPATH); ``of_this_checkout`` starts them from the checkout
the tests import, through ``held_child.py``, which sets the holds.

A hold is a FIFO in the test's folder (the process may read anywhere, and write nowhere but
in its job's folders): the process opens it and reads it to its end, so it waits there until
the test opens it for writing (``Gate.reached``, which sees the reader) and closes it
(``Gate.release``). Nothing is timed.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

import appliance
from appliance import bytecode
from appliance.engine import launcher

CHILD = Path(__file__).with_name("held_child.py")
CHECKOUT = Path(appliance.__file__).resolve().parents[1]
# The holds, by what they hold (a FIFO each in the folder the process is given).
MOVED = "moved"
ASKED = "asked"


class Gate:
    """One hold: the process waits in it from the moment it opens it until ``release``."""

    def __init__(self, folder: Path, name: str) -> None:
        self.path = folder / name
        os.mkfifo(self.path)
        self._fd: int | None = None

    def reached(self) -> bool:
        """Whether the process waits in the hold now (it keeps waiting until ``release``)."""
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # (ENXIO: no reader yet)
                    raise
        return self._fd is not None

    def release(self) -> None:
        """Let the process go on, and any that come to the hold later pass it."""
        fd = os.open(self.path, os.O_RDWR)  # a writer: a reader still opening it gets in
        self.path.unlink()
        os.close(fd)
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def of_this_checkout(monkeypatch: pytest.MonkeyPatch, folder: Path, *holds: str
                     ) -> dict[str, Gate]:
    """Start the download processes of runtimes started from now on from this checkout, with
    ``holds`` (``MOVED``, ``ASKED``) in ``folder``."""
    gates = {name: Gate(folder, name) for name in holds}
    monkeypatch.setattr(launcher, "CHILD", [sys.executable, "-I", *bytecode.inherited(),
                                            str(CHILD), str(CHECKOUT), str(folder)])
    return gates
