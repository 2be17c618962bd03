"""Whether a download is working when it says nothing: the signs its processes leave in
/proc and in its folder.

yt-dlp reports progress only from its own downloaders. One it hands to ffmpeg (HLS or DASH
with sections, a live stream, a merge) reports nothing until ffmpeg ends, and an ffmpeg that
hangs on a dead connection never ends: the item stayed 'preparing' for good and held its slot.
A bound on time alone also stopped the legitimate long ones (a live stream, the merge of a
4 GB file, a box busy with a transcode), so a download is stalled only when none of these
moved for the whole bound: the CPU time of its process group (and of the children it reaped),
the bytes its processes read (network, files), the bytes they wrote to storage, and the
bytes of the files in the job's temp folder.

Writes to a pipe are left out on purpose: ffmpeg writes its status line to stderr twice a
second even while it waits for a byte that never comes. So is a trickle of CPU time below
``CPU_FLOOR``: ffmpeg's loop wakes 100 times a second while two inputs wait, which costs a
tick now and then and is no work.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

# A share of one core: less CPU time than this over a window is no sign of work by itself.
CPU_FLOOR = 0.02
TICKS = os.sysconf("SC_CLK_TCK")
# The files of one job's temp folder counted at most (one download writes a few).
MAX_FILES = 1000


@dataclasses.dataclass(frozen=True)
class Signs:
    """What a download's processes had done by one moment (totals since they started)."""

    cpu: int  # clock ticks: the group's processes and the children they reaped
    read: int  # bytes read from anything (rchar): the network, files, pipes
    stored: int  # bytes written to storage (write_bytes)
    files: int  # bytes of the files in the job's temp folder
    helpers: tuple[str, ...]  # names of the processes the download started (ffmpeg)


def _stat(entry: str) -> tuple[int, int, str, str] | None:
    """(process group, CPU ticks, state, name) of process ``entry``; None when it is gone."""
    try:
        with open(f"/proc/{entry}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    name, _, rest = text.rpartition(b")")  # the name may hold ")" and spaces
    fields = rest.split()
    try:
        ticks = sum(int(field) for field in fields[11:15])  # utime stime cutime cstime
        return int(fields[2]), ticks, fields[0].decode(), \
            name.partition(b"(")[2].decode(errors="replace")
    except (IndexError, ValueError):
        return None


def _io(entry: str) -> tuple[int, int]:
    """(rchar, write_bytes) of process ``entry``; zeros when it cannot be read."""
    values: dict[bytes, int] = {}
    try:
        with open(f"/proc/{entry}/io", "rb") as io:
            for line in io:
                key, _, value = line.partition(b":")
                values[key] = int(value)
    except (OSError, ValueError):
        return 0, 0
    return values.get(b"rchar", 0), values.get(b"write_bytes", 0)


def folder_bytes(folder: Path | None) -> int:
    """The bytes of the files under ``folder`` (``MAX_FILES`` at most); 0 when it is gone."""
    total = count = 0
    if folder is None:
        return 0
    for top, _, names in os.walk(folder):
        for name in names:
            count += 1
            if count > MAX_FILES:
                return total
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:  # gone meanwhile (a fragment merged and deleted)
                continue
    return total


def group_signs(pgid: int, folder: Path | None) -> Signs:
    """The signs of work of process group ``pgid`` (a download process leads its own) and of
    the job's temp ``folder``."""
    cpu = read = stored = 0
    helpers: list[str] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _stat(entry)
        if stat is None or stat[0] != pgid:
            continue
        _, ticks, state, name = stat
        cpu += ticks
        got, wrote = _io(entry)
        read += got
        stored += wrote
        if int(entry) != pgid and state != "Z" and name not in helpers:
            helpers.append(name)
    return Signs(cpu, read, stored, folder_bytes(folder), tuple(sorted(helpers)))


def worked(before: Signs, after: Signs, seconds: float) -> bool:
    """Whether the processes worked between two looks ``seconds`` apart. A process that ended
    (its totals gone from the sums) is a change too."""
    cpu = after.cpu - before.cpu
    return (cpu < 0 or cpu > CPU_FLOOR * seconds * TICKS or after.read != before.read
            or after.stored != before.stored or after.files != before.files)


def who(signs: Signs | None) -> str:
    """What stalled, in words: the processes the download started, else yt-dlp itself."""
    if signs is not None and signs.helpers:
        return f"the downloader ({', '.join(signs.helpers)})"
    return "yt-dlp"
