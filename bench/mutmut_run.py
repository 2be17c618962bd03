"""``mutmut`` (3.8) with one change, for bench/mutation.sh: its fork runner reaps with
``os.wait()``, so a process the in-process test run (stats, clean run) left to exit later —
a download process, a server's — ended the whole run with ``KeyError``. Such a child is
reaped and skipped; the runner goes on waiting for a mutant's worker."""

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

if __name__ == "__main__":
    from mutmut.__main__ import cli

    sys.argv[0] = "mutmut"
    cli()
