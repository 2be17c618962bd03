"""The zygote's loop (``zygote.answer``) run on a thread of the test process, the test as its
service on the other end of the socket: the zygote itself runs in a process of its own, where
nothing of it could be judged by a mutant. The processes it forks are forks of the test
process that run a few system calls (``child`` below), never Python's machinery.

What the service relies on: ``ready`` first; per ``fork`` a process in a group of its own,
running with the two descriptors sent (and nothing of the zygote's), said as ``forked PID``
with a pidfd; an ``exit PID CODE`` when it ends (a signal negative); the zygote's copies of
what it was sent closed, whatever the message; ``drain`` ends the loop only once every
process forked has ended; the service's end ends it at once."""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import select
import signal
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from support.pids_limit import pids_limit

from appliance.engine import zygote


def child(commands: int, messages: int) -> None:
    """A forked process: says its pid and group, then exits with the byte the test sends (0
    at the end of its pipe). First it closes what it has of the test process (a zygote has
    nothing else): the test's end of its own pipe would hold that end off for ever."""
    low, high = sorted((commands, messages))
    os.closerange(3, low)
    os.closerange(low + 1, high)
    os.closerange(high + 1, os.sysconf("SC_OPEN_MAX"))
    os.write(messages, b"%d %d\n" % (os.getpid(), os.getpgid(0)))
    code = os.read(commands, 1)
    os._exit(code[0] if code else 0)


class Service:
    """The service's end of the socket, the loop on a thread of its own."""

    def __init__(self, start_child: Callable[[int, int], None] = child) -> None:
        self.socket, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.socket.settimeout(30)
        self.loop = threading.Thread(target=self._answer, args=(theirs, start_child),
                                     daemon=True)
        self.loop.start()

    @staticmethod
    def _answer(theirs: socket.socket, start_child: Callable[[int, int], None]) -> None:
        with theirs:
            zygote.answer(theirs, start_child)

    def said(self) -> tuple[bytes, list[int]]:
        message, fds, _, _ = socket.recv_fds(self.socket, 64, 1)
        return message, fds

    def fork(self) -> tuple[int, int, int, int]:
        """A forked process: its pid, its pidfd, the end of its commands to write and the
        end of its messages to read."""
        commands_read, commands = os.pipe()
        messages, messages_write = os.pipe()
        socket.send_fds(self.socket, [zygote.FORK], [commands_read, messages_write])
        os.close(commands_read)  # the process has its copies, the zygote had its own
        os.close(messages_write)
        message, fds = self.said()
        kind, pid = message.split()
        assert kind == b"forked" and len(fds) == 1, message
        return int(pid), fds[0], commands, messages


@pytest.fixture
def service() -> Iterator[Service]:
    service = Service()
    assert service.said() == (zygote.READY, [])
    yield service
    service.socket.close()  # the service gone: the loop ends
    service.loop.join(timeout=30)
    assert not service.loop.is_alive(), "the loop outlived its service"


def pidfds() -> int:
    """How many pidfds this process holds."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, gone
            count += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[pidfd]"
    return count


def ended(fd: int) -> bool:
    return bool(select.select([fd], [], [], 30)[0])


def test_a_fork_runs_in_a_group_of_its_own_and_its_end_is_said(service: Service) -> None:
    pid, pidfd, commands, messages = service.fork()
    assert os.read(messages, 100) == b"%d %d\n" % (pid, pid)  # leads a group of its own
    os.write(commands, bytes([7]))
    assert service.said() == (b"exit %d 7" % pid, [])
    assert ended(pidfd)  # a pidfd of that very process
    # Its messages' end: nobody else holds the pipe (the zygote closed its copy).
    assert os.read(messages, 100) == b""
    killed, killed_fd, killed_commands, killed_messages = service.fork()
    os.read(killed_messages, 100)
    os.kill(killed, signal.SIGKILL)
    assert service.said() == (b"exit %d %d" % (killed, -signal.SIGKILL), [])
    for fd in (pidfd, commands, messages, killed_fd, killed_commands, killed_messages):
        os.close(fd)


def test_a_drain_ends_the_loop_once_its_processes_have_ended(service: Service) -> None:
    pid, pidfd, commands, messages = service.fork()
    os.read(messages, 100)
    service.socket.send(zygote.DRAIN)
    os.close(commands)  # the process reads the end of its pipe, and exits 0
    assert service.said() == (b"exit %d 0" % pid, [])  # the loop ran on after the drain
    service.loop.join(timeout=30)
    assert not service.loop.is_alive(), "a drained loop with nothing left went on"
    for fd in (pidfd, messages):
        os.close(fd)


def test_a_message_it_does_not_know_costs_it_nothing(service: Service) -> None:
    """A fork with one descriptor, a word it does not know: no process, nothing said, what
    came with them closed; the next fork is answered."""
    sent = []
    for message, count in ((zygote.FORK, 1), (b"spawn", 2)):
        pipes = [os.pipe() for _ in range(count)]
        socket.send_fds(service.socket, [message], [write for _, write in pipes])
        for read, write in pipes:
            os.close(write)
            sent.append(read)
    pid, pidfd, commands, messages = service.fork()  # answered, and it is a fork's answer
    for read in sent:  # every copy of the write ends is closed: the zygote's too
        assert ended(read) and os.read(read, 1) == b""
        os.close(read)
    os.close(commands)
    assert service.said() == (b"exit %d 0" % pid, [])
    for fd in (pidfd, messages):
        os.close(fd)


def test_a_fork_the_kernel_refuses_is_said_and_the_loop_goes_on(service: Service) -> None:
    """At the limit of processes (this process held to its count of tasks: the loop's fork
    gets EAGAIN) the loop says ``failed 11``, closes what it was sent, and answers the next
    fork once processes can be had (it ended: its service's every start was a cold one)."""
    commands_read, commands = os.pipe()
    messages, messages_write = os.pipe()
    with pids_limit([os.getpid()]) as limit:
        limit.hold()
        socket.send_fds(service.socket, [zygote.FORK], [commands_read, messages_write])
        said = service.said()
    os.close(commands_read)
    os.close(messages_write)
    assert said == (b"failed %d" % errno.EAGAIN, [])
    assert ended(messages) and os.read(messages, 1) == b""  # its copy closed, no process
    os.close(messages)
    os.close(commands)
    pid, pidfd, commands, messages = service.fork()
    os.close(commands)
    assert service.said() == (b"exit %d 0" % pid, [])
    for fd in (pidfd, messages):
        os.close(fd)


def test_the_services_end_ends_the_loop_at_once(service: Service) -> None:
    """The service is gone (its socket closed): the loop returns although a forked process
    still runs (it follows by itself: the end of its commands' pipe); the loop's pidfd of it
    is closed."""
    before = pidfds()
    pid, pidfd, commands, messages = service.fork()
    os.read(messages, 100)
    service.socket.close()
    service.loop.join(timeout=30)
    assert not service.loop.is_alive()
    os.close(commands)
    assert ended(pidfd)
    _, status = os.waitpid(pid, 0)  # (the loop has gone: the test reaps it)
    assert os.waitstatus_to_exitcode(status) == 0
    for fd in (pidfd, messages):
        os.close(fd)
    assert pidfds() == before


def leaver(commands: int, messages: int) -> None:
    """A forked process that starts one of its own in its group (as a download starts
    ffmpeg), says its pid, and ends without it."""
    os.closerange(3, min(commands, messages))
    left = os.fork()
    if left == 0:
        while True:
            signal.pause()
    os.write(messages, b"%d\n" % left)
    os._exit(3)


def test_what_a_fork_leaves_in_its_group_ends_with_it() -> None:
    """Killed by the zygote before it reaps the fork: while the fork is unreaped the group's
    number is its own; once reaped, a kill of it could reach another's group."""
    service = Service(leaver)
    assert service.said() == (zygote.READY, [])
    pid, pidfd, commands, messages = service.fork()
    left = int(os.read(messages, 100))
    left_fd = os.pidfd_open(left)
    try:
        assert service.said() == (b"exit %d 3" % pid, [])
        assert ended(left_fd), "what the fork left in its group lives on"
    finally:
        signal.pidfd_send_signal(left_fd, signal.SIGKILL)
        service.socket.close()
        service.loop.join(timeout=30)
        for fd in (pidfd, commands, messages, left_fd):
            os.close(fd)


class Exited(Exception):
    """``os._exit`` as the zygote's process would have called it."""


def test_the_zygotes_life_freezes_what_it_imported_then_answers_then_exits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``zygote.serve``, the zygote process's whole life, on a thread of the test process
    (nothing is forked here, so only that thread calls ``os._exit``): what it imported goes
    out of the collector's sight, its loop says ready, and once the service is gone it exits
    with 0."""

    def exit_(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(os, "_exit", exit_)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.settimeout(30)
    codes: list[int] = []

    def life() -> None:
        with theirs:
            try:
                zygote.serve(theirs, child)
            except Exited as exc:
                codes.append(exc.args[0])

    thread = threading.Thread(target=life, daemon=True)
    thread.start()
    try:
        assert socket.recv_fds(ours, 64, 1)[:2] == (zygote.READY, [])
        assert gc.get_freeze_count() > 0
    finally:
        ours.close()
        thread.join(timeout=30)
        gc.unfreeze()
    assert not thread.is_alive() and codes == [0]
