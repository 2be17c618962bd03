"""Processes as /proc shows them: who started whom, which group each is in, whether it runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple


class Proc(NamedTuple):
    pid: int
    ppid: int
    pgid: int
    state: str  # Z: a zombie, already dead
    comm: str


def processes() -> dict[int, Proc]:
    table: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # (a name is any bytes a process gave itself: test_stalls.py gives one not UTF-8)
            stat = (entry / "stat").read_text(errors="replace")
        except OSError:  # it ended while we looked
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        state, ppid, pgid = stat[stat.rindex(")") + 2:].split()[:3]
        table[int(entry.name)] = Proc(int(entry.name), int(ppid), int(pgid), state, comm)
    return table


def descendants(root: int) -> list[Proc]:
    """Every living process started, directly or not, by ``root``."""
    table = processes()
    children: dict[int, list[Proc]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return [p for p in found if p.state != "Z"]


def ffmpeg_group(root: int, argument: str) -> int | None:
    """The process group of an ffmpeg that ``root`` started (through yt-dlp) with an argument
    that contains ``argument``, once it writes its output (a ``.part`` file), if one does."""
    for proc in descendants(root):
        if proc.comm != "ffmpeg" or proc.pgid == os.getpgid(0):
            continue
        try:
            argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
            files = [os.readlink(fd) for fd in Path(f"/proc/{proc.pid}/fd").iterdir()]
        except OSError:  # it ended while we looked
            continue
        if argument in argv and any(".part" in f for f in files):
            return proc.pgid
    return None


def living_in_group(pgid: int) -> list[Proc]:
    """The processes of group ``pgid`` that still run (zombies are dead, only not reaped)."""
    return [p for p in processes().values() if p.pgid == pgid and p.state != "Z"]


def thread_niceness(pid: int) -> dict[int, int]:
    """The niceness of each living thread of process ``pid``: {thread id: niceness}."""
    found = {}
    for entry in Path(f"/proc/{pid}/task").iterdir():
        try:
            found[int(entry.name)] = os.getpriority(os.PRIO_PROCESS, int(entry.name))
        except OSError:  # it ended while we looked
            continue
    return found
