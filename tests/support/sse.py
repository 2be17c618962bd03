"""A Server-Sent Events client for tests: reads a streamed ``requests`` response in a thread
and hands over events as they arrive (``next``/``until`` wait with a deadline)."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

_END = object()


class SseClient:
    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.events: list[dict[str, Any]] = []  # every event read so far (comments included)
        self.error: BaseException | None = None
        self.ended = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True, name="sse-client")
        self._thread.start()

    def _read(self) -> None:
        name, data, buffer = "message", [], b""
        try:
            for chunk in self.response.iter_content(chunk_size=None):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8").rstrip("\r")
                    if not line:
                        if data:
                            self._queue.put({"event": name, "data": "\n".join(data)})
                        name, data = "message", []
                    elif line.startswith(":"):
                        self._queue.put({"event": "comment", "data": line[1:].strip()})
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
        except BaseException as exc:  # recorded: a test asserts whether the end was clean
            self.error = exc
        finally:
            self.ended.set()
            self._queue.put(_END)

    def next(self, timeout: float = 30) -> dict[str, Any] | None:
        """The next event, or None when the stream has ended."""
        item = self._queue.get(timeout=timeout)
        if item is _END:
            self._queue.put(_END)
            return None
        self.events.append(item)
        return item

    def until(self, match: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching event in {len(self.events)} events")
            try:
                event = self.next(timeout=remaining)
            except queue.Empty:
                continue
            if event is None:
                raise AssertionError(f"the stream ended first (error: {self.error!r}); "
                                     f"events: {self.events[-5:]}")
            if match(event):
                return event

    def rest(self, timeout: float = 60) -> list[dict[str, Any]]:
        """Every event until the stream ends (which must happen within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                if self.next(timeout=remaining) is None:
                    return self.events
            except queue.Empty:
                break
        raise AssertionError(f"the stream did not end within {timeout:g} s")

    def close(self) -> None:
        # The socket shut first: the reader thread's read, blocked until the service's next
        # heartbeat (15 s), ends now; the response's close alone waited for it.
        with contextlib.suppress(ValueError, RuntimeError, OSError):  # already ended
            self.response.raw.shutdown()
        self.response.close()


def data(event: dict[str, Any]) -> Any:
    return json.loads(event["data"])
