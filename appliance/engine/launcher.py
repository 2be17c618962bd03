"""How the pool starts a download process: forked from a zygote (``zygote``), which shares
yt-dlp's imported modules and compiled extractors with every process it forks, or -- when no
zygote can be had -- spawned as a fresh interpreter, as before zygotes.

The service never forks itself (its worker is threaded); the zygote is a process of its own,
single-threaded, started like any other child. A zygote that dies or hangs costs its forks in
flight a fallback to a spawned process; the next start makes a new zygote. The processes it
forked run on without it: their pipes lead to the service, not to the zygote.

Owners: the launcher's lock guards which zygote is current; a ``Zygote``'s reader thread owns
its socket's receiving side and its exit codes (under its condition); one fork at a time is
asked of a zygote (its fork lock).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from .. import bytecode
from . import zygote as protocol

log = logging.getLogger(__name__)

# Starting a zygote is the cold start of a yt-dlp process; a fork takes milliseconds. A start
# not ready after READY_TIMEOUT seconds in which it used no CPU time is hung (stopped,
# deadlocked) and killed; one that used some is waited for another round: it yields the CPU
# to everything else (cpu_share), and on a box busy with other work (a transcode, a media
# scan) seconds of CPU take minutes. Killed at a fixed bound, it began again from nothing,
# and again. READY_LIMIT: a start that works this long without getting ready is hung too.
READY_TIMEOUT = 60.0
READY_LIMIT = 1800.0
FORK_TIMEOUT = 10.0
# A forked process has ended (its pidfd says so); its zygote reports how within milliseconds,
# or, on a box that thrashes (the zygote's pages swapped out), seconds or minutes later. A
# process's end is waited for that long while its zygote lives: a code given up on after 2 s
# told a kill by the out-of-memory killer as an end "without an answer". A look that must not
# wait (``poll``) waits EXIT_CODE_GLANCE and asks again next time.
EXIT_CODE_LIMIT = 300.0
EXIT_CODE_GLANCE = 0.05
CHILD = [sys.executable, "-I", *bytecode.inherited(), "-m", "appliance.engine.download_process"]


class ZygoteFailed(Exception):
    """The zygote did not start, did not fork, or is gone."""


class ForkFailed(OSError):
    """The zygote could not fork (the box's limit of processes, its memory): it lives on,
    warm, for the next start; a new zygote would fail alike, and cost a cold start."""


def spawn() -> subprocess.Popen[bytes]:
    """A fresh download process that warms up yt-dlp by itself."""
    return subprocess.Popen(
        # -I: the working directory (perhaps a download folder) is not on sys.path, so a
        # downloaded yt_dlp.py can never be imported in place of yt-dlp.
        CHILD,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,  # yt-dlp's own chatter goes to the service's stderr (the journal)
        start_new_session=True,  # its own process group: a kill reaches ffmpeg too
        close_fds=True,
    )


def readable(fd: int, timeout: float | None) -> bool:
    """Whether ``fd`` has something to read (or its end) within ``timeout`` seconds (None: no
    bound). poll, not select: select refuses a descriptor past 1023, which a busy service
    whose limit was raised (a container's) hands out."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(None if timeout is None else timeout * 1000))


def cpu_time(pid: int) -> int | None:
    """The CPU time process ``pid`` has used (user and system, in clock ticks); None when it
    is gone (or its /proc entry cannot be read)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()  # after the name, which may hold ")"
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def started(pid: int, ready: Callable[[float], bool], timeout: float) -> bool:
    """Whether ``ready(seconds)`` comes true while process ``pid`` starts: asked in rounds of
    ``timeout`` seconds, as long as the process used CPU time in the last one (READY_LIMIT at
    most). ``ready`` may raise (the process ended)."""
    give_up = time.monotonic() + READY_LIMIT
    used = cpu_time(pid)
    while not ready(max(0.0, min(timeout, give_up - time.monotonic()))):
        before, used = used, cpu_time(pid)
        if used is None or used == before or time.monotonic() >= give_up:
            return False
    return True


class ForkedProcess:
    """A download process forked by a zygote: what a ``Worker`` uses of a ``Popen``."""

    def __init__(self, zygote: Zygote, pid: int, pidfd: int, commands: int,
                 messages: int) -> None:
        self.pid = pid
        self.stdin = os.fdopen(commands, "wb")
        self.stdout = os.fdopen(messages, "rb")
        self.returncode: int | None = None
        self._zygote = zygote
        self._pidfd = pidfd  # readable once the process has ended, whoever reaps it

    def poll(self) -> int | None:
        if self.returncode is None and readable(self._pidfd, 0):
            self._ended(EXIT_CODE_GLANCE, final=False)
        return self.returncode

    def ended(self) -> bool:
        """Whether it has ended, its code told yet or not (``poll`` says None until it is).
        Any thread may ask: it only looks (the pidfd is closed after the code is set)."""
        return self.returncode is not None or readable(self._pidfd, 0)

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not readable(self._pidfd, timeout):
                raise subprocess.TimeoutExpired(f"download process {self.pid}", timeout or 0)
            self._ended(EXIT_CODE_LIMIT, final=True)
        assert self.returncode is not None
        return self.returncode

    def _ended(self, wait: float, final: bool) -> None:
        code = self._zygote.exit_code(self.pid, wait, final)
        if code is None and not final and not self._zygote.gone:
            return  # ended, its code not told yet: the next look asks again
        # Unknown when its zygote died first (init reaped it): 0, as subprocess says when
        # another reaper took the status.
        self.returncode = 0 if code is None else code
        os.close(self._pidfd)


class Zygote:
    """One zygote process and the service's end of its socket."""

    def __init__(self, generation: int) -> None:
        self.generation = generation  # the pool's generation (a yt-dlp update) it started in
        self._socket, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [*CHILD, "--zygote", str(theirs.fileno())], stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),), start_new_session=True)
        except OSError:
            self._socket.close()
            raise
        finally:
            theirs.close()
        self.gone = False
        self._replies: queue.Queue[tuple[int, int] | ForkFailed | None] = queue.Queue()
        self._codes: dict[int, int] = {}
        self._unwanted: set[int] = set()  # processes whose code was given up on
        self._cond = threading.Condition()
        self._fork_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name=f"zygote-{self.proc.pid}")
        self._reader.start()

    def wait_ready(self) -> None:
        """Until it has imported yt-dlp (a cold start: seconds, more on a busy box); ZygoteFailed
        if it died (or was killed) first, or hung (``started``)."""
        replies: list[tuple[int, int] | ForkFailed | None] = []

        def ready(seconds: float) -> bool:
            with contextlib.suppress(queue.Empty):
                replies.append(self._replies.get(timeout=seconds))
            return bool(replies)

        hung = not started(self.proc.pid, ready, READY_TIMEOUT)
        if hung:  # (one that ended is its reader's to reap: its number is not ours to kill)
            self.kill()
        if hung or replies[0] is None:
            raise ZygoteFailed(f"the zygote {self.proc.pid} did not start")

    def _reply(self, timeout: float) -> tuple[int, int] | ForkFailed | None:
        try:
            return self._replies.get(timeout=timeout)
        except queue.Empty:  # it hangs: the next start makes a new one
            self.kill()
            return None

    def fork(self) -> ForkedProcess:
        (commands_read, commands), (messages, messages_write) = _pipes()
        try:
            with self._fork_lock:
                if self.gone:
                    raise ZygoteFailed("the zygote is gone")
                socket.send_fds(self._socket, [protocol.FORK], [commands_read, messages_write])
                reply = self._reply(FORK_TIMEOUT)
        except BaseException:
            os.close(commands)
            os.close(messages)
            raise
        finally:  # the new process has its own copies; the service keeps the other ends
            os.close(commands_read)
            os.close(messages_write)
        if not isinstance(reply, tuple):
            os.close(commands)
            os.close(messages)
            raise reply or ZygoteFailed(f"the zygote {self.proc.pid} did not fork")
        pid, pidfd = reply
        return ForkedProcess(self, pid, pidfd, commands, messages)

    def exit_code(self, pid: int, timeout: float, final: bool = True) -> int | None:
        """How process ``pid`` ended, as its zygote reports it within ``timeout`` seconds;
        None if it did not (or is gone). ``final``: nobody asks again, so a code told later
        is dropped as it comes, not kept for as long as the zygote lives."""
        with self._cond:
            self._cond.wait_for(lambda: pid in self._codes or self.gone, timeout)
            code = self._codes.pop(pid, None)
            if code is None and final and not self.gone:
                self._unwanted.add(pid)
            return code

    def _read(self) -> None:
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self._socket, 64, 1)
            except OSError:
                message, fds = b"", []
            if not message:
                break
            kind, _, rest = message.partition(b" ")
            if kind == protocol.READY:
                self._replies.put((self.proc.pid, -1))
            elif kind == b"forked":  # its pidfd dropped if this process had no room for it
                self._replies.put((int(rest), fds[0]) if fds else _refused(errno.EMFILE))
            elif kind == protocol.FAILED:
                self._replies.put(_refused(int(rest)))
            elif kind == b"exit":
                pid, code = (int(x) for x in rest.split())
                with self._cond:
                    if pid in self._unwanted:  # (its number is not reused before this line)
                        self._unwanted.discard(pid)
                    else:
                        self._codes[pid] = code
                    self._cond.notify_all()
        with self._cond:
            self.gone = True
            self._cond.notify_all()
        self._replies.put(None)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=READY_TIMEOUT)
        self._socket.close()

    def drain(self) -> None:
        """No more forks: it exits once the processes it forked have ended."""
        with contextlib.suppress(OSError):
            self._socket.send(protocol.DRAIN)

    def kill(self) -> None:
        """Not once its reader has reaped it (a zygote that died, replaced after a failed
        fork): its number may be another process's by then. Popen's kill looks first."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def close(self) -> None:
        """Exit now (the service stops: the processes it forked are gone already)."""
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_WR)
        self._reader.join(timeout=10)
        if self._reader.is_alive():
            self.kill()
            self._reader.join(timeout=10)


def _refused(code: int) -> ForkFailed:
    return ForkFailed(code, os.strerror(code))


def _pipes() -> tuple[tuple[int, int], tuple[int, int]]:
    """A forked process's two pipes; ForkFailed when this process has no descriptor left for
    them (EMFILE): a refusal like the zygote's own, not its fault (it was killed for it)."""
    first = None
    try:
        first = os.pipe()
        return first, os.pipe()
    except OSError as exc:
        for fd in first or ():
            os.close(fd)
        raise _refused(exc.errno or errno.EMFILE) from None


def _pidfds_work() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):  # Linux before 5.3, or not Linux
        return False
    return True


class Launcher:
    """Starts download processes for the pool: forked from the current zygote (made on first
    need, replaced when it died or the pool moved to a newer generation), else spawned."""

    def __init__(self) -> None:
        self.forks = _pidfds_work()
        self._lock = threading.Lock()
        self._zygote: Zygote | None = None
        self._starting: Zygote | None = None  # made, not ready yet (the lock is held)
        self._draining: list[Zygote] = []
        self._closed = False

    @property
    def warm(self) -> bool:
        """Whether a zygote is ready to fork (and holds its memory)."""
        return self._zygote is not None and not self._zygote.gone

    def prepare(self, generation: int) -> None:
        """Make the zygote ahead of need, so that the next start only forks. Raises
        ZygoteFailed (or OSError) when none can be had."""
        self._zygote_for(generation)

    def start(self, generation: int) -> ForkedProcess | subprocess.Popen[bytes]:
        """A new download process; ZygoteFailed once ``close`` has begun."""
        if self.forks:
            failure: Exception | None = None
            # A zygote found dead (or hung) when asked is replaced once, at once: it may have
            # died a moment before its reader noticed.
            for _ in range(2):
                zygote = None
                try:
                    zygote = self._zygote_for(generation)
                    return zygote.fork()
                except ForkFailed as exc:  # a spawn says whether any process can be had
                    failure = exc
                    break
                except (OSError, ZygoteFailed) as exc:
                    failure = exc
                    if zygote is None:  # none could be had (closed, or it did not start)
                        break
                    self._replace(zygote)
            if not self._closed:
                log.warning("could not fork a download process (%s); starting one afresh",
                            failure)
        if self._closed:  # the service stops: a start that raced it starts nothing
            raise ZygoteFailed("the pool is closed")
        return spawn()

    def _replace(self, zygote: Zygote) -> None:
        """A zygote that failed a fork is not asked again; the next start makes a new one."""
        zygote.kill()
        with self._lock:
            if self._zygote is zygote:
                self._let_go(zygote)

    def _zygote_for(self, generation: int) -> Zygote:
        with self._lock:
            if self._closed:  # a start that raced the pool's close makes no new zygote
                raise ZygoteFailed("the pool is closed")
            current = self._zygote
            if current is not None and (current.gone or current.generation < generation):
                self._let_go(current)
                current = None
            if current is None:
                self._zygote = None
                current = self._starting = Zygote(generation)
                try:
                    if self._closed:  # close() came after the check above, and may have
                        current.kill()  # read _starting before it was set
                    current.wait_ready()
                finally:
                    self._starting = None
                self._zygote = current
            return current

    def rest(self) -> None:
        """Nothing to start for a while: the zygote goes once its processes have; the next
        start makes a new one."""
        with self._lock:
            if self._zygote is not None:
                self._let_go(self._zygote)

    def _let_go(self, zygote: Zygote) -> None:
        zygote.drain()
        self._zygote = None
        self._draining = [z for z in self._draining if not z.gone] + [zygote]

    def close(self) -> None:
        # Before the lock, which a zygote's start holds until it is ready: the service's stop
        # does not wait out a cold start (up to READY_TIMEOUT when it hangs); that start fails.
        self._closed = True
        starting = self._starting
        if starting is not None:
            starting.kill()
        with self._lock:
            zygotes = [z for z in (self._zygote, *self._draining) if z is not None]
            self._zygote, self._draining = None, []
        for zygote in zygotes:
            zygote.close()
