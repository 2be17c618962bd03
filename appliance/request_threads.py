"""The HTTP worker's request threads: all started with the worker, the last one idle first.

gthread's pool (a ``ThreadPoolExecutor``) starts its threads as requests come: the thread a
request needed while the service was at its limit of tasks (systemd's ``TasksMax``, the pids
cgroup) was refused, and the refusal, raised in the poller, killed the worker — the API and
the downloads' supervision gone until the limit eased. Here every thread starts with the
worker. Started all at once, the executor's queue would hand each request to the thread that
has waited longest, so every thread would take requests in turn and keep a database
connection and its page cache of its own (some forty, where a few requests at a time need a
few); here the thread that went idle last takes the next request, and those beyond the
busiest moment's count stay cold.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from queue import SimpleQueue
from typing import Any

Work = tuple[Future, Callable[..., Any], tuple, dict]


class RequestThreads(Executor):
    """``count`` threads named ``{name}_N``, started now; a submit goes to the thread that went
    idle last, or waits in order for the first to be free. ``shutdown`` ends each thread once
    the work given before it is done."""

    def __init__(self, count: int, name: str = "request") -> None:
        self._lock = threading.Lock()
        self._idle: list[SimpleQueue[Work | None]] = []
        self._waiting: deque[Work] = deque()
        self._closed = False
        self._threads = []
        for n in range(count):
            thread = threading.Thread(target=self._serve, args=(SimpleQueue(),),
                                      name=f"{name}_{n}")
            thread.start()
            self._threads.append(thread)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            if self._idle:
                self._idle.pop().put((future, fn, args, kwargs))
            else:
                self._waiting.append((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            if cancel_futures:
                for future, *_ in self._waiting:
                    future.cancel()
                self._waiting.clear()
        for inbox in idle:
            inbox.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _next(self, inbox: SimpleQueue[Work | None]) -> Work | None:
        with self._lock:
            if self._waiting:
                return self._waiting.popleft()
            if self._closed:
                return None
            self._idle.append(inbox)
        return inbox.get()

    def _serve(self, inbox: SimpleQueue[Work | None]) -> None:
        while (work := self._next(inbox)) is not None:
            future, fn, args, kwargs = work
            del work
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # the future carries it, as the executor does
                future.set_exception(exc)
                del exc
            else:
                future.set_result(result)
                del result
            # Not held while idle: a finished answer's objects are freed now, not at the next.
            del future, fn, args, kwargs
