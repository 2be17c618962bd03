"""A stand-in for systemd's notify socket: a real AF_UNIX datagram socket that records each
message with the sender's pid (SO_PASSCRED, as systemd reads it)."""

from __future__ import annotations

import contextlib
import socket
import struct
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from support.server import wait_for


class Message(NamedTuple):
    pid: int
    fields: dict[str, str]


class NotifySocket:
    """``hook``, if given, is called with each message as it arrives (in the reader thread),
    to look at the service at that very moment; what it returns is kept in ``hooked``."""

    def __init__(self, hook: Callable[[Message], Any] | None = None) -> None:
        self.hook = hook
        self.hooked: list[Any] = []
        # sun_path holds at most 107 bytes: a short folder of its own, not the test's tmp_path.
        self._dir = tempfile.mkdtemp(prefix="notify-")
        self.path = str(Path(self._dir) / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        creds = struct.calcsize("3i")
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(creds))
            except OSError:
                return
            pid = 0
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:creds])[0]
            fields = dict(line.split("=", 1) for line in data.decode().splitlines()
                          if "=" in line)
            message = Message(pid, fields)
            if self.hook is not None:
                self.hooked.append(self.hook(message))
            with self._lock:
                self.messages.append(message)

    def received(self) -> list[Message]:
        with self._lock:
            return list(self.messages)

    def wait(self, match: Any, timeout: float = 30, message: str = "a notify message"
             ) -> Message:
        """The first message for which ``match(message)`` is true."""
        return wait_for(lambda: next((m for m in self.received() if match(m)), None),
                        timeout=timeout, message=message)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with contextlib.suppress(OSError):
            Path(self.path).unlink()
            Path(self._dir).rmdir()
