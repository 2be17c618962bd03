"""A bound on the regular expressions yt-dlp runs for a person: ``--match-filters`` (its
``~=``), ``--match-title`` and ``--reject-title``.

yt-dlp runs them with Python's ``re``, which stops only at the end of a match:
``title~=(a+)+$`` on a title of forty ``a`` and a ``!`` takes minutes. The service refuses
expressions that would take memory to build (``appliance.patterns``) when they are saved, but
no check of an expression's text tells how long it will backtrack on some title. So the
download process bounds the time: ``re`` looks for signals every few thousand steps, and a
handler that raises stops the match there. The bound is CPU time of the process (a download
process runs niced on a busy box; a second of CPU is far more than any real filter needs).
Jobs run on the process's main thread, the only one a signal handler runs on; elsewhere the
filters run unbounded, as yt-dlp runs them.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from yt_dlp.utils import DownloadError

# CPU seconds one check of an item against the filters may take.
FILTER_SECONDS = 2.0


class FilterTooSlow(DownloadError):
    """The item's check against a person's filters ran past FILTER_SECONDS: the job's error."""


@contextlib.contextmanager
def bounded_filters(seconds: float = FILTER_SECONDS) -> Iterator[None]:
    """Within: FilterTooSlow once the process has spent ``seconds`` of CPU."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise FilterTooSlow(
            f"A regular expression of --match-filters, --match-title or --reject-title ran "
            f"longer than {seconds:g} s of CPU on this item's fields and was stopped: it "
            f"backtracks without end on them (such as (a+)+$). Write it without nested "
            f"repeats.")

    previous = signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
