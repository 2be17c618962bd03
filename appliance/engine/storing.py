"""An item's state change that the disk refuses is waited on, not dropped.

The engine announces a state only once it is stored. When the database's disk is full (or
read-only, or failing), a download thread's write raised, the thread died holding its download
process, and its item stayed in its last state in the queue until a restart: a few of those
and no download could start. Now the write is tried again until the disk takes it, and the
download goes on by itself once a person has freed some space; meanwhile its process waits
(its messages wait in their pipe). Only the engine's own threads wait so (a download's, an
extraction's: ``patiently``); a request's write raises at once, and the API answers 507 with
the failure's words. The first refusal is logged as an error, which reaches websocket clients
and notification targets (``logs.BusForwarder``), and the recovery once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from ..store.database import StorageFailure

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0


class StateWrites:
    """Runs the engine's state writes until the disk takes them (or the engine stops)."""

    def __init__(self) -> None:
        self.retry_seconds = RETRY_SECONDS
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._failing = False
        self._patient = threading.local()

    @contextlib.contextmanager
    def patiently(self) -> Iterator[None]:
        """Within it, this thread's writes wait for the disk (``store``)."""
        self._patient.waits = True
        try:
            yield
        finally:
            self._patient.waits = False

    def stop(self) -> None:
        """Waiting writes give up: what was stored before stands, and the next start goes
        on from there (an interrupted download resumes)."""
        self._stopped.set()

    def store(self, write: Callable[[], None]) -> bool:
        """``write()``; in a patient thread, again every ``retry_seconds`` while it is a
        ``StorageFailure`` (False when the engine stopped first), elsewhere that raises."""
        patient = getattr(self._patient, "waits", False)
        while True:
            try:
                write()
            except StorageFailure as exc:
                if not patient:
                    raise  # the request's answer (507) says it
                self._failed(exc)
            else:
                self._succeeded()
                return True
            if self._stopped.wait(self.retry_seconds):
                return False

    def _failed(self, exc: StorageFailure) -> None:
        with self._lock:
            first, self._failing = not self._failing, True
        if first:
            log.error("%s Downloads wait until their state can be stored and go on by "
                      "themselves then (tried again every %g s).", exc.message,
                      self.retry_seconds)

    def _succeeded(self) -> None:
        if not self._failing:  # the usual case: no lock taken
            return
        with self._lock:
            recovered, self._failing = self._failing, False
        if recovered:
            log.warning("The database is written again: waiting downloads go on.")
