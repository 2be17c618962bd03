"""``mutmut`` (3.8) with two changes, for bench/mutation.sh: its fork runner reaps with
``os.wait()``, so a process the in-process test run (stats, clean run) left to exit later —
a download process, a server's — ended the whole run with ``KeyError``. Such a child is
reaped and skipped; the runner goes on waiting for a mutant's worker. Each mutant's
worker runs in a process group of its own (``_own_group``). And its wall-clock timeout
signals only a worker still running (``_Live``): mutmut keeps the timeouts of workers long
ended and signalled their numbers when due, by then another process's (a test run of the
same box's shell got SIGXCPU, "CPU time limit exceeded")."""

from __future__ import annotations

import os
import sys
from datetime import datetime

from mutmut.workers import isolation
from mutmut.workers import timeout as timeouts


def wait_for_result(self: isolation.ForkRunner, timeout: float | None = None
                    ) -> isolation.MutantResult:
    if self._no_tests_results:
        return self._no_tests_results.pop(0)
    while True:
        pid, wait_status = os.wait()
        if pid in self._running:
            break
    worker = self._running.pop(pid)
    _live.discard(pid)
    return isolation.MutantResult(
        mutant_name=worker.mutant_name, exit_code=os.waitstatus_to_exitcode(wait_status),
        duration=(datetime.now() - worker.start_time).total_seconds())


isolation.ForkRunner.wait_for_result = wait_for_result  # type: ignore[method-assign]

_live: set[int] = set()  # the mutants' workers not yet reaped


class _Live:
    """``os`` as mutmut's timeout thread sees it: ``kill`` reaches a worker not yet reaped
    only (a reaped one's number may be another process's by then)."""

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    @staticmethod
    def kill(pid: int, signal_number: int) -> None:
        if pid in _live:
            os.kill(pid, signal_number)


def _register_timeout(pid: int, timeout_s: float) -> None:
    _live.add(pid)
    timeouts.register_timeout(pid, timeout_s)


timeouts.os = _Live()  # type: ignore[assignment]
isolation.register_timeout = _register_timeout  # type: ignore[assignment]

_RUNNER = os.getpid()


def _own_group() -> None:
    """A mutant's test run (a fork of the runner) leads a process group of its own: a mutant
    that left a download process in its caller's group (``start_new_session=False``) had that
    process's ``killpg(0)`` at the end of its pipe take the whole run, this script and
    bench/mutation.sh with it; now only that mutant's run ends (and counts as killed)."""
    if os.getppid() == _RUNNER:
        os.setpgid(0, 0)


os.register_at_fork(after_in_child=_own_group)

if __name__ == "__main__":
    from mutmut.__main__ import cli

    sys.argv[0] = "mutmut"
    cli()
