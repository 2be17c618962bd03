"""``mutmut`` (3.8) with two changes, for bench/mutation.sh: its fork runner reaps with
``os.wait()``, so a process the in-process test run (stats, clean run) left to exit later —
a download process, a server's — ended the whole run with ``KeyError``. Such a child is
reaped and skipped; the runner goes on waiting for a mutant's worker. And each mutant's
worker runs in a process group of its own (``_own_group``)."""

from __future__ import annotations

import os
import sys
from datetime import datetime

from mutmut.workers import isolation


def wait_for_result(self: isolation.ForkRunner, timeout: float | None = None
                    ) -> isolation.MutantResult:
    if self._no_tests_results:
        return self._no_tests_results.pop(0)
    while True:
        pid, wait_status = os.wait()
        if pid in self._running:
            break
    worker = self._running.pop(pid)
    return isolation.MutantResult(
        mutant_name=worker.mutant_name, exit_code=os.waitstatus_to_exitcode(wait_status),
        duration=(datetime.now() - worker.start_time).total_seconds())


isolation.ForkRunner.wait_for_result = wait_for_result  # type: ignore[method-assign]

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
