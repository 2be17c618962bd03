"""A pool of warm yt-dlp processes (``engine.child``): forked on demand from a zygote that
shares yt-dlp's memory with them (see ``launcher``) -- or, when none can be had, spawned ahead
of need -- replaced when killed, retired soon after the last download -- the zygote too -- so
that a box between downloads holds no extra memory.

Warm means: the zygote (or spawned spares) made at start waits ``idle_timeout`` for a first
download; after a download the zygote and the last used process stay ``linger`` seconds, for
the next job of a burst (an item's download follows its extraction), then go.

Owners: a ``Worker`` belongs to the thread that holds it (the pool, or the caller between
``acquire`` and ``release``/``discard``); any thread may ``signal_kill`` it, only the holder
reaps it. The pool's own state belongs to its lock (see ``WorkerPool``)."""

from __future__ import annotations

import contextlib
import enum
import errno
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, NoReturn

from .. import heap
from .launcher import ForkedProcess, Launcher, ZygoteFailed, readable, started

log = logging.getLogger(__name__)

# A process serves this many jobs, then is replaced: a long-lived yt-dlp accumulates caches.
MAX_JOBS_PER_PROCESS = 50
READY_TIMEOUT = 60.0
# The longest message a process may send (a URL's whole info, a long playlist's entries: a
# few MB). A longer line is a process gone wrong, read no further: memory is the Pi's.
MAX_MESSAGE = 64 << 20


# What the owner can do when the kernel refuses a process (or a thread): the refusal's own
# words say what, not where.
PROCESS_LIMIT = ("the service's limit of processes and threads (systemd's TasksMax, ulimit -u) "
                 "is reached")
REFUSALS = {errno.EAGAIN: PROCESS_LIMIT, errno.ENOMEM: "memory is short",
            errno.EMFILE: "the service's limit of open files is reached",
            errno.ENFILE: "the system's limit of open files is reached"}


class WorkerDied(Exception):
    """The process ended (killed, crashed) before it answered."""


class Worker:
    def __init__(self, proc: ForkedProcess | subprocess.Popen[bytes], generation: int = 0
                 ) -> None:
        # The pool's generation when it started: an older process is not used again.
        self.generation = generation
        self.proc = proc
        self.pid = self.proc.pid
        self.jobs = 0
        self._buffer = bytearray()
        self._scanned = 0  # how much of the buffer holds no line break
        self._fd = self.proc.stdout.fileno()  # type: ignore[union-attr]

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            return False
        # a forked one may have ended with its code not told yet
        return not (isinstance(self.proc, ForkedProcess) and self.proc.ended())

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until the process says it is ready (``launcher.started``: rounds of ``timeout``
        seconds while it uses CPU time); else it is killed (with what it started) and reaped,
        and WorkerDied says why: nobody holds a process that did not start."""
        said: list[dict[str, Any]] = []

        def ready(seconds: float) -> bool:
            message = self.read(deadline=time.monotonic() + seconds)
            if message is not None:
                said.append(message)
            return bool(said)

        try:
            ok = started(self.pid, ready, timeout)
        except WorkerDied:  # its pipe ended: perhaps it lives on without it
            self.kill()
            raise
        if not ok or said[0].get("type") != "ready":
            self.kill()
            raise WorkerDied(f"download process {self.pid} did not start")

    def read(self, deadline: float) -> dict[str, Any] | None:
        """The next message, or None when the deadline passes. Raises WorkerDied on EOF, and
        on what breaks the protocol (then the process is killed): a line that is not a JSON
        object, or one longer than MAX_MESSAGE."""
        # Only what came since the last look is searched: a message of many MB arrives in
        # 64 KiB reads, and searching all of it each time costs the square of its length.
        while (end := self._buffer.find(b"\n", self._scanned)) < 0:
            self._scanned = len(self._buffer)
            if self._scanned > MAX_MESSAGE:
                self._broken(f"a message longer than {MAX_MESSAGE >> 20} MiB")
            if not readable(self._fd, max(0.0, deadline - time.monotonic())):
                return None
            chunk = os.read(self._fd, 1 << 16)
            if not chunk:
                raise WorkerDied(self.exit_reason())
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 1]
        self._scanned = 0
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested past the stack
            message = None
        if not isinstance(message, dict):
            self._broken("a message that is not a JSON object")
        return message

    def _broken(self, what: str) -> NoReturn:
        self.kill()
        raise WorkerDied(f"the download process sent {what}; it was stopped")

    def exit_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the download process stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:  # a real-time signal has no name
                name = f"signal {-code}"
            # SIGKILL: the kernel's out-of-memory killer, mostly, on a small box.
            hint = " (out of memory?)" if code == -signal.SIGKILL else ""
            return f"the download process was killed by {name}{hint}"
        if code == 0:  # only ever asked for (an exit), or unknown: its zygote was gone
            return "the download process ended without an answer (exit code 0)"
        return f"the download process exited with code {code}"

    def run(
        self,
        command: dict[str, Any],
        on_message: Callable[[dict[str, Any]], None],
        check: Callable[[], str | None] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one job and relay its messages until its result (or error) arrives.

        ``check`` is called about once a second; a non-empty answer kills the job with that
        reason. Raises WorkerDied when the process ends first.
        """
        self.jobs += 1
        self._send(command)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # Wake at least once a second even when the process is silent, to run ``check``.
            tick = time.monotonic() + 1.0
            message = self.read(deadline=tick if deadline is None else min(tick, deadline))
            if message is not None and message.get("type") in {"result", "error"}:
                return message
            if message is not None:
                on_message(message)
            # Checked after messages too: a process that never stops talking (a warning a
            # line, in a loop) must not outlast its bound.
            if deadline is not None and time.monotonic() >= deadline:
                self.kill()
                raise WorkerDied(f"no answer within {timeout:g} s")
            reason = check() if check is not None else None
            if reason:
                self.kill()
                raise WorkerDied(reason)

    def answer(self, message: dict[str, Any]) -> None:
        """Answer the job's question (``child.Channel.ask``), from the ``on_message`` of
        ``run``. Raises WorkerDied when the process is gone."""
        self._send(message)

    def _send(self, command: dict[str, Any]) -> None:
        try:
            self.proc.stdin.write(json.dumps(command).encode() + b"\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError):
            raise WorkerDied(self.exit_reason()) from None

    def signal_kill(self) -> None:
        """Kill the process group from any thread; the owner sees EOF and reaps it. Not a
        forked one known to have ended: its zygote killed what was left of its group as it
        reaped it, and the group's number may be another's by now. (A spawned one's group
        outlives its reap while a member lives, which keeps the number its own.)"""
        if isinstance(self.proc, ForkedProcess) and self.proc.ended():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def kill(self) -> None:
        """Kill the process and everything it started (ffmpeg), and reap it. Owner only."""
        self.signal_kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self._close_pipes()

    def retire(self) -> None:
        try:
            self._send({"op": "exit"})
            self.proc.wait(timeout=5)
        except (WorkerDied, subprocess.TimeoutExpired):
            pass
        self.kill()

    def _close_pipes(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]


class State(enum.Enum):
    """Where a pool's process is. The pool counts its processes by state."""

    STARTING = "starting"  # launched for the pool, importing yt-dlp (not yet any caller's)
    IDLE = "idle"  # warm, waiting for a job
    BUSY = "busy"  # handed out by ``acquire`` (or being started for that caller)


class WorkerPool:
    """Hands out warm workers; keeps the zygote (or ``spare`` spawned processes) ready while
    busy; retires idle ones.

    Owner: the pool's condition lock guards its idle list and its counts. It is never held
    across a process start, a wait for one to be ready, a retire or a kill (each may take
    seconds); those run on the calling thread (or the keeper thread) after it is released.
    The interface is what a download needs (``acquire``, ``release``, ``discard``, ``close``,
    ``stats``), so another way of starting processes can take this one's place.
    """

    def __init__(self, spare: int, idle_timeout: float,
                 capacity: int | Callable[[], int], linger: float) -> None:
        self.spare = spare
        # Idle processes worth keeping; a function, so that it follows the settings.
        self._capacity = capacity if callable(capacity) else lambda: capacity
        self.idle_timeout = idle_timeout
        self.linger = linger
        self._idle: list[Worker] = []
        self._launching: set[Worker] = set()  # started for callers of acquire, not ready yet
        self._count: Counter[State] = Counter()
        # Counts as just used: the zygote (or a spare) is warmed at start, so the first
        # download after a boot does not pay for a cold yt-dlp; unused, it retires after the
        # idle timeout. Once a download has come, the linger counts instead.
        self._last_used = time.monotonic()
        self._used = False
        self._closed = False
        self._generation = 0
        self._launcher = Launcher()
        self._cond = threading.Condition()
        self._keeper = threading.Thread(target=self._keep, name="pool-keeper", daemon=True)
        self._keeper.start()

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"idle": len(self._idle), "busy": self._count[State.BUSY],
                    "starting": self._count[State.STARTING]}

    def pids(self) -> list[int]:
        with self._cond:
            return [w.pid for w in self._idle]

    def renew(self) -> None:
        """Processes started before now are not used again (a new yt-dlp was installed):
        idle ones retire at once, busy ones when their job ends; running jobs go on."""
        with self._cond:
            self._generation += 1
            idle, self._idle = self._idle, []
        self._launcher.rest()  # the next process comes from a zygote that imports the new one
        with self._cond:
            self._cond.notify_all()  # the keeper may warm that zygote now
        for worker in idle:
            worker.retire()

    def acquire(self) -> Worker:
        """A warm worker for one job (the caller's until ``release`` or ``discard``).
        Raises WorkerDied when none can be had: the pool is closing, or no process starts."""
        dead: list[Worker] = []
        worker = None
        with self._cond:
            if self._closed:
                raise WorkerDied("the engine is stopping")
            self._count[State.BUSY] += 1
            self._last_used = time.monotonic()
            self._used = True
            while self._idle and worker is None:
                candidate = self._idle.pop()
                if candidate.alive():
                    worker = candidate
                else:
                    dead.append(candidate)
            generation = self._generation
            self._cond.notify_all()  # the keeper may start a replacement spare
        for gone in dead:
            gone.kill()
        if worker is not None:
            return worker
        try:
            worker = Worker(self._launcher.start(generation), generation)
            self._wait_ready(worker)
        except (OSError, WorkerDied, ZygoteFailed) as exc:
            with self._cond:
                self._count[State.BUSY] -= 1
            if isinstance(exc, ZygoteFailed):  # only once the pool closes
                raise WorkerDied("the engine is stopping") from exc
            if isinstance(exc, OSError):  # the callers' one failure: no process to be had
                # (the interpreter gone, no file descriptors or processes left)
                said = exc.strerror or str(exc)
                if exc.errno in REFUSALS:
                    said += f": {REFUSALS[exc.errno]}"
                raise WorkerDied(f"no download process could be started: {said}") from exc
            raise
        return worker

    def _wait_ready(self, worker: Worker) -> None:
        """``worker.wait_ready()`` for a caller of ``acquire``, which ``close`` ends at once:
        the service's stop does not wait out a start (its caller's download is stopping)."""
        with self._cond:
            self._launching.add(worker)
            closed = self._closed
        try:
            if closed:  # close() came while it was launched, and did not see it
                worker.kill()
                raise WorkerDied("the engine is stopping")
            worker.wait_ready()
        finally:
            with self._cond:
                self._launching.discard(worker)

    def _room(self) -> int:
        """Idle processes worth keeping (under the lock). A spawned one costs a second of CPU
        to replace: up to the capacity. A forked one costs milliseconds, but its first job is
        slower (50-100 ms here: it copies the ~20 MB of pages that job touches, and pays lazy
        imports), so one used process is kept (the most recently released, taken first: an
        item's download follows its extraction), within the capacity -- except while other
        callers still hold processes: in a burst (a round of task listings and extractions)
        a used process is kept for the next job rather than a fresh one forked for it (a
        round of 500 tasks forked 179 processes, for twice the CPU and time of 24-72,
        bench/tasks_scale.py); the burst's extra ones retire when its last job ends."""
        if self._launcher.forks and self._count[State.BUSY] == 0:
            return min(self._capacity(), 1)
        return self._capacity()

    def release(self, worker: Worker) -> None:
        """Give back a worker that finished its job normally."""
        with self._cond:
            self._count[State.BUSY] -= 1
            self._last_used = time.monotonic()
            keep = (not self._closed and worker.alive() and worker.jobs < MAX_JOBS_PER_PROCESS
                    and worker.generation == self._generation
                    and len(self._idle) < self._room())
            if keep:
                self._idle.append(worker)
            cut = max(0, len(self._idle) - self._room())  # oldest first
            surplus, self._idle = self._idle[:cut], self._idle[cut:]
            # Kept or not, the keeper's next step may change (no longer busy: time the idle).
            self._cond.notify_all()
        for extra in surplus if keep else [*surplus, worker]:
            extra.retire()

    def discard(self, worker: Worker) -> None:
        """A worker that was killed or died: reap it; the keeper starts a spare if needed."""
        worker.kill()
        with self._cond:
            self._count[State.BUSY] -= 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            launching = list(self._launching)
            self._cond.notify_all()
        for worker in launching:
            worker.signal_kill()  # its caller sees it end (its holder reaps it)
        for worker in idle:
            worker.retire()
        self._launcher.close()  # first: a zygote the keeper is warming is killed, not waited for
        self._keeper.join(timeout=10)

    def _keep(self) -> None:
        """Keep the zygote (or the spawned spares) ready while the pool is in use; retire
        everything idle, the zygote too, once the pool has been idle for its window."""
        while True:
            start_one = rest = False
            retire: list[Worker] = []
            with self._cond:
                if self._closed:
                    return
                busy = self._count[State.BUSY]
                window = self.linger if self._used else self.idle_timeout
                left = window - (time.monotonic() - self._last_used)
                in_use = busy > 0 or left > 0
                if in_use and self._count[State.STARTING] < self._wanted():
                    self._count[State.STARTING] += 1
                    start_one = True
                    wait = None
                elif not in_use and (self._idle or self._launcher.warm):
                    retire, self._idle = self._idle, []
                    rest = True
                    wait = None
                elif in_use and busy == 0:
                    wait = left + 0.05
                else:
                    wait = None  # nothing to do until somebody acquires or releases
                if not start_one and not rest:
                    self._cond.wait(timeout=wait)
                    continue
            for worker in retire:
                log.debug("retiring idle download process %s", worker.pid)
                worker.retire()
            if rest:
                self._launcher.rest()
                heap.give_back()  # what the burst's messages and events allocated and freed
            if start_one:
                self._warm_one()

    def _wanted(self) -> int:
        """How many starts ahead of need are missing (the lock held): the zygote, when there
        is one to fork from (a pre-forked spare would buy only the fork's milliseconds: its
        first job copies its pages all the same), else the spawned spares."""
        if self._launcher.forks:
            return int(self.spare > 0 and not self._launcher.warm)
        return max(0, self.spare - len(self._idle))

    def _warm_one(self) -> None:
        """Start the zygote, or a spawned spare, ahead of need."""
        worker: Worker | None = None
        with self._cond:
            generation = self._generation
        try:
            if self._launcher.forks:
                self._launcher.prepare(generation)
            else:
                worker = Worker(self._launcher.start(generation), generation)
                worker.wait_ready()
            failed = False
        except (OSError, WorkerDied, ZygoteFailed) as exc:
            if not self._closed:  # a start that raced the close is no failure
                log.warning("could not start a download process ahead of need: %s", exc)
            failed = True
        late = None  # a spare that became ready after the pool closed
        with self._cond:
            self._count[State.STARTING] -= 1
            if (worker is not None and not self._closed
                    and worker.generation == self._generation):
                self._idle.append(worker)
            else:
                late = worker
            self._cond.notify_all()
            if failed and not self._closed:
                # Do not spin on a failing start: back off before the keeper tries again
                # (waiting releases the lock).
                self._cond.wait(timeout=5)
        if late is not None:
            late.retire()
