"""``mutmut`` (3.8) with three changes, for bench/mutation.sh: its fork runner reaps with
``os.wait()``, so a process the in-process test run (stats, clean run) left to exit later —
a download process, a server's — ended the whole run with ``KeyError``. Such a child is
reaped and skipped; the runner goes on waiting for a mutant's worker. Each mutant's
worker runs in a process group of its own (``_own_group``). And its wall-time bound signals
only a mutant's run that has not been reaped (``_signal_if_unreaped``)."""

from __future__ import annotations

import os
import sys
import types
from datetime import datetime

from mutmut.workers import isolation
from mutmut.workers import timeout as wall_bound

# Mutant runs forked and not yet reaped: while unreaped, a number is still that run's.
_UNREAPED: set[int] = set()


def _signal_if_unreaped(pid: int, signum: int) -> None:
    """mutmut's wall-time bound (``mutmut.workers.timeout``) sends SIGXCPU to every mutant
    run's number when its time is up, by design even to one that ended long before: by then,
    on a box with a pid_max of 32,768 and thousands of processes a minute, the number was
    often another program's. It killed test workers of other runs on the box (pytest-xdist:
    "node down: Not properly terminated", exit status SIGXCPU), then xdist hung waiting for
    the lost worker's tests. Called under ``wall_bound._heap_lock``, which the reaping below
    holds too."""
    if pid in _UNREAPED:
        os.kill(pid, signum)


wall_bound.os = types.SimpleNamespace(kill=_signal_if_unreaped, getpid=os.getpid)
_register_timeout = isolation.register_timeout


def register_timeout(pid: int, timeout_s: float) -> None:
    with wall_bound._heap_lock:
        _UNREAPED.add(pid)
    _register_timeout(pid=pid, timeout_s=timeout_s)


isolation.register_timeout = register_timeout


def wait_for_result(self: isolation.ForkRunner, timeout: float | None = None
                    ) -> isolation.MutantResult:
    if self._no_tests_results:
        return self._no_tests_results.pop(0)
    while True:
        # Which child ended, without reaping it; then, where the bound cannot signal in
        # between, forgotten and reaped.
        pid = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT).si_pid
        with wall_bound._heap_lock:
            _UNREAPED.discard(pid)
            _, wait_status = os.waitpid(pid, 0)
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
