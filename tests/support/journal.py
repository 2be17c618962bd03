"""A real systemd-journald, in a journal namespace of its own, and a stream to it as systemd
gives a service's stdout and stderr (``JOURNAL_STREAM`` names it); ``journalctl`` reads it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import uuid
from pathlib import Path

from support.server import wait_for

JOURNALD = Path("/lib/systemd/systemd-journald")


def available() -> bool:
    return JOURNALD.exists() and shutil.which("journalctl") is not None \
        and Path("/etc/machine-id").exists()


class Journal:
    def __init__(self) -> None:
        self.namespace = f"appliance-test-{uuid.uuid4().hex[:8]}"
        self.run = Path(f"/run/systemd/journal.{self.namespace}")
        self.proc = subprocess.Popen([str(JOURNALD), self.namespace], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: (self.run / "stdout").exists(), timeout=30, message="journald")

    def stream(self, identifier: str) -> socket.socket:
        """A connected stdout stream, as systemd opens one: ``<N>`` prefixes are read as the
        line's priority, unprefixed lines are info."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(self.run / "stdout"))
        # identifier, unit, priority, level prefix, to syslog, to kmsg, to console
        sock.sendall(f"{identifier}\n\n6\n1\n0\n0\n0\n".encode())
        return sock

    @staticmethod
    def stream_env(sock: socket.socket) -> str:
        stat = os.fstat(sock.fileno())
        return f"{stat.st_dev}:{stat.st_ino}"

    def read(self, *args: str) -> list[str]:
        """``journalctl --namespace=… ARGS -o cat``: the messages, oldest first."""
        out = subprocess.run(["journalctl", f"--namespace={self.namespace}", "--no-pager",
                              "-o", "cat", *args], capture_output=True, text=True, check=False)
        return out.stdout.splitlines()

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)
        shutil.rmtree(self.run, ignore_errors=True)
        machine = Path("/etc/machine-id").read_text().strip()
        for folder in (Path("/var/log/journal"), Path("/run/log/journal")):
            shutil.rmtree(folder / f"{machine}.{self.namespace}", ignore_errors=True)
