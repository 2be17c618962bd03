"""Where the TUI's thread workers run: daemon threads that quitting does not wait for.

Textual runs a ``@work(thread=True)`` worker in the event loop's default executor, and the
loop waits for that executor's threads when it closes (and the interpreter at its exit). A
request still in flight when the person quit (a slow or trickling service, a hundred URLs of
a paste being added) held the TUI on its last screen until it ended: up to the answer's
bound of two minutes. Its answer has no one to read it: the app drops what a worker brings
after it closed (``ApplianceApp.call_from_thread``).
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

THREAD_NAME = "tui-worker"


class DaemonExecutor(concurrent.futures.ThreadPoolExecutor):
    """Each call in a daemon thread of its own (the TUI makes a handful at a time). A
    ThreadPoolExecutor by its type only, which asyncio asks of a default executor: its
    pool's threads are joined at exit, these are not."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
               ) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        call = _Call(future, fn, args, kwargs)
        threading.Thread(target=call.run, name=THREAD_NAME, daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to wait for: what still runs is abandoned with the app."""


class _Call:
    def __init__(self, future: concurrent.futures.Future[Any], fn: Callable[..., Any],
                 args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.future, self.fn, self.args, self.kwargs = future, fn, args, kwargs

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # the worker's to judge, as the executor's would
            self.future.set_exception(exc)
            # As ThreadPoolExecutor does: the exception's frames hold this one, and this one
            # the future that holds the exception; that cycle kept what the failed call held
            # (a log stream's socket, one of the service's few stream slots) until a garbage
            # collection came.
            self = None  # type: ignore[assignment]
        else:
            self.future.set_result(result)
