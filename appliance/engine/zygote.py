"""The zygote: one single-threaded process that imports yt-dlp and warms it up once, then forks
every download process from itself. A fork shares the zygote's memory copy-on-write, so a
download process costs a few MB of its own and a fork (milliseconds), not a 50 MB interpreter
and a second of CPU.

It runs ``engine.download_process`` with ``--zygote FD`` (see ``launcher.Zygote`` for the
service's side) and speaks on FD, a SOCK_SEQPACKET socket, one message per packet:

- service -> zygote: ``fork`` with two descriptors attached (the end of the job pipe the new
  process reads, the end of the message pipe it writes); ``drain`` (exit once every process
  forked so far has ended); the end of the socket (the service is gone: exit now).
- zygote -> service: ``ready``; ``forked PID`` with a pidfd of the new process attached (opened
  before the zygote can reap it, so the pid cannot have been reused); ``failed ERRNO`` when it
  could not fork (no process or memory to be had: it lives on, for the next ``fork``);
  ``exit PID CODE`` when it reaped one (CODE as ``subprocess`` gives it: negative for a signal).

The service keeps the other ends of both pipes, so a forked process sees the end of its job
pipe when the service dies, however it dies, and kills its process group (``child``), as a
spawned one does. Each forked process is in a process group of its own (set on both sides of
the fork, so that a kill of the group reaches it from the moment the service knows its pid).
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import socket
from collections.abc import Callable
from typing import NoReturn

FORK, DRAIN, READY, FAILED = b"fork", b"drain", b"ready", b"failed"


def serve(control: socket.socket, start_child: Callable[[int, int], None]) -> NoReturn:
    """Fork a download process per ``fork``; ``start_child(commands_fd, messages_fd)`` is what
    the new process runs (it never returns)."""
    # Everything imported so far lives as long as the process: out of the collector's sight,
    # a collection in a forked process does not write to (and so copy) the pages it is on.
    gc.collect()
    gc.freeze()
    answer(control, start_child)
    os._exit(0)


def answer(control: socket.socket, start_child: Callable[[int, int], None]) -> None:
    """The zygote's loop: ``ready``, then a fork per ``fork``, an ``exit`` per process reaped;
    returns once drained and every forked process has ended, or when the service is gone."""
    children: dict[int, int] = {}  # pidfd -> pid
    draining = False
    # poll, not select: the socket keeps the number it has in the service (pass_fds), past
    # 1023 in a busy service whose limit was raised, where select() raised ValueError: the
    # zygote died at once, and every download process was started cold instead.
    poller = select.poll()
    poller.register(control, select.POLLIN)
    try:
        control.send(READY)
        while not (draining and not children):
            ready = {fd for fd, _ in poller.poll()}
            for pidfd in [fd for fd in ready if fd in children]:
                poller.unregister(pidfd)
                control.send(_reap(pidfd, children.pop(pidfd)))
            if control.fileno() not in ready:
                continue
            message, fds, _, _ = socket.recv_fds(control, 64, 2)
            if not message:
                break  # the service is gone
            if message == DRAIN:
                draining = True
            elif message == FORK and len(fds) == 2:
                try:
                    pid, pidfd = _start(fds, control, children, start_child)
                except OSError as exc:  # the box's limit of processes, its memory: for now
                    control.send(b"%s %d" % (FAILED, exc.errno or 0))
                    continue
                children[pidfd] = pid
                poller.register(pidfd, select.POLLIN)
                socket.send_fds(control, [b"forked %d" % pid], [pidfd])
            else:
                for fd in fds:
                    os.close(fd)
    except OSError:  # the service's end went away mid-message
        pass
    finally:  # (the zygote exits next; a test's loop gives them back)
        for pidfd in children:
            os.close(pidfd)


def _reap(pidfd: int, pid: int) -> bytes:
    os.close(pidfd)
    # What is left of its group (an ffmpeg it started) goes with it, killed while its
    # unreaped leader still holds the group's number: once reaped, the number may be reused,
    # and a kill of it from the service could reach a stranger's group.
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return b"exit %d %d" % (pid, os.waitstatus_to_exitcode(status))


def _start(fds: list[int], control: socket.socket, children: dict[int, int],
           start_child: Callable[[int, int], None]) -> tuple[int, int]:
    """A forked process and its pidfd; OSError when either cannot be had (EAGAIN, ENOMEM,
    EMFILE), with nothing of it left: the descriptors sent closed, a process without its
    pidfd killed and reaped (unreaped, its number is still its own)."""
    pid = _fork(fds, control, children, start_child)
    try:
        return pid, os.pidfd_open(pid)
    except OSError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise


def _fork(fds: list[int], control: socket.socket, children: dict[int, int],
          start_child: Callable[[int, int], None]) -> int:
    try:
        pid = os.fork()
    except OSError:
        for fd in fds:
            os.close(fd)
        raise
    if pid == 0:
        try:
            os.setpgid(0, 0)
            # Nothing of the zygote's stays open here: not its socket (the service would not
            # see the zygote end), not the pidfds of the other processes.
            control.close()
            for pidfd in children:
                os.close(pidfd)
            # ``random`` reseeds itself in a forked child (os.register_at_fork).
            start_child(*fds)
        finally:
            os._exit(1)
    with contextlib.suppress(OSError):  # it may already have done it itself, or died
        os.setpgid(pid, pid)
    for fd in fds:
        os.close(fd)
    return pid
