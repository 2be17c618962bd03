"""The HTTP worker's request threads: gthread's pool, living on when a thread is refused.

gthread's pool (a ``ThreadPoolExecutor``) starts its threads as requests come. The thread a
request needed while the service was at its limit of tasks (systemd's ``TasksMax``, the pids
cgroup) was refused, and the refusal, raised in the poller, killed the worker — the API and
the downloads' supervision gone until the limit eased. Here the request waits, in the pool's
queue, for one of the threads there are; one starts with the pool, so that there is one.

Not all started with the worker: measured (``bench/tasks_scale.py``, three pairs), a pool of
every thread started at once answered the round's p99 0.5 ms slower and 5 % fewer requests,
and each thread that took requests kept a database connection of its own.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

REFUSAL_LOG_INTERVAL = 60.0


class RequestThreads(ThreadPoolExecutor):
    def __init__(self, max_workers: int, thread_name_prefix: str = "request") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._refusal_said = -REFUSAL_LOG_INTERVAL
        self.submit(int).result()  # the first thread, now: a request always has one

    def _adjust_thread_count(self) -> None:
        # (the executor's own, called by submit once the work is queued: refused, the work
        # stays queued for the threads there are)
        try:
            super()._adjust_thread_count()
        except RuntimeError as exc:  # "can't start new thread"
            if not self._threads:
                raise
            now = time.monotonic()
            if now - self._refusal_said >= REFUSAL_LOG_INTERVAL:
                self._refusal_said = now
                log.warning("the system refused a thread for a request (%s): requests wait for "
                            "the %d request threads there are; the service's limit of tasks "
                            "(systemd's TasksMax) is reached", exc, len(self._threads))
