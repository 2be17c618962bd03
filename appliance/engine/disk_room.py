"""Room on the disks downloads write to: the temporary folder's (partial files) and the
download folder's, which may be two disks.

A download that finds a disk full (ENOSPC, or the user's quota: EDQUOT) is not failed: each
after it would fail the same way, a queue of 50 fifty times, and none would go on once room
was made. Downloads wait instead (``folder_disk``), and go on by themselves once every disk
found short has ``floor`` bytes free again: a few bytes more than nothing would let the next
download fill it again at once. (Or, on the temporary folder's disk, as much as it could have
free while the partial files wait there, when that is less.) An item that fills a disk too
often, or is larger than the whole disk, fails with the reason (``too_often``, ``too_big``):
it would wait for good.
A user's quota used up is not seen in the disk's free bytes: no wait is said, the download is
tried again at once, and fails the same way at its fourth time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from pathlib import Path

from ..units import human_size

FLOOR_BYTES = 64 << 20
# A small disk (an SD card's spare partition, a test's tmpfs) waits for a 20th of its size.
FLOOR_SHARE = 20
# Blocks of its own a file system may hold beyond its folders (a FAT's tables, an exFAT's
# bitmap), never to be freed: 16 KiB on a tmpfs, 512 KiB on an exFAT disk of 128 KiB clusters.
KEPT_BLOCKS = 4
# Waits for room one item may cause; the next time it fills a disk, it fails.
MOST_WAITS = 3
# The name ``folder_disk.folders`` gives the folder of partial files.
TEMPORARY = "temporary folder"

_FULL = re.compile(rf"\[Errno (?:{errno.ENOSPC}|{errno.EDQUOT})\]|No space left on device"
                   r"|Disk quota exceeded")


def disk_full(message: str) -> bool:
    """Whether a download's failure is a full disk (yt-dlp's errno, or ffmpeg's words)."""
    return _FULL.search(message) is not None


def floor(total: int) -> int:
    """The bytes a disk of ``total`` bytes must have free before downloads go on."""
    return min(FLOOR_BYTES, total // FLOOR_SHARE)


def _usage(folder: Path) -> tuple[int, int, int] | None:
    """``folder``'s disk's size, its free bytes and how many more files it can hold (-1: no
    count kept, as btrfs keeps none); None when it cannot be asked."""
    try:
        disk = os.statvfs(folder)
    except OSError:
        return None
    files = disk.f_favail if disk.f_files else -1
    return disk.f_blocks * disk.f_frsize, disk.f_bavail * disk.f_frsize, files


def short(folders: dict[str, Path]) -> str | None:
    """What is said while a disk of ``folders`` (named by what they hold) has less than its
    floor free, or room for no more files (every inode used: a disk of many small files);
    None while each has room. The floor of the temporary folder's disk is never more than
    that disk could have free with every other file gone (``_reachable``)."""
    held = _held(folders.get(TEMPORARY))
    for what, folder in folders.items():
        usage = _usage(folder)
        if usage is None:
            continue
        total, free, files = usage
        if files == 0:
            return (f"The disk of the {what} {folder} can hold no more files (every inode "
                    f"is used; {human_size(free) or 'nothing'} free): downloads wait, and go "
                    "on by themselves once files are removed from it.")
        needed = min(floor(total), _reachable(folder, held))
        if free < needed:
            return (f"The disk of the {what} {folder} is full ({human_size(free) or 'nothing'}"
                    f" free): downloads wait, and go on by themselves once it has "
                    f"{human_size(needed)} free. Free some space on it.")
    return None


def _held(temp: Path | None) -> tuple[int, int] | None:
    """The temporary folder's disk and the bytes the downloads' partial files take there (a
    folder for each item): no one frees them while the downloads wait. None when it cannot
    be asked."""
    if temp is None:
        return None
    try:
        device = os.stat(temp).st_dev
        items = [entry.path for entry in os.scandir(temp)
                 if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return None
    taken = 0
    for item in items:
        for top, _, names in os.walk(item):
            for name in [os.curdir, *names]:  # (its folder's blocks too)
                with contextlib.suppress(OSError):
                    taken += os.lstat(os.path.join(top, name)).st_blocks * 512
    return device, taken


def _reachable(folder: Path, held: tuple[int, int] | None) -> int:
    """The most ``folder``'s disk could have free while the partial files wait on it. A
    download within a 20th (or 64 MiB) of its disk's size, alone there, left less than the
    floor free however much else was removed, and waited for good; the floor is this then,
    and a download that still does not fit fails at its fourth time (``too_often``)."""
    try:
        disk = os.statvfs(folder)
        device = os.stat(folder).st_dev
    except OSError:
        return 0
    usable = (disk.f_blocks - (disk.f_bfree - disk.f_bavail)) * disk.f_frsize
    usable -= _kept_by_the_disk(folder, device, disk.f_frsize)
    if held is not None and held[0] == device:
        usable -= held[1]
    return max(0, usable)


def _kept_by_the_disk(folder: Path, device: int, block: int) -> int:
    """What ``folder``'s disk holds that no removal frees, as far as can be told: the folders
    from its mount point down to ``folder``, its ``lost+found`` (ext4's, 16 KiB), and
    KEPT_BLOCKS of its blocks (a FAT's own tables). Counted as room to free, a download
    whose partial file alone left less than the floor free waited for good on ext4 (a
    tmpfs, where the tests ran, holds none of it)."""
    kept = KEPT_BLOCKS * block
    mount_point = None
    for at in (folder := Path(os.path.abspath(folder)), *folder.parents):
        try:
            info = os.lstat(at)
        except OSError:
            break
        if info.st_dev != device:
            break
        kept += info.st_blocks * 512
        mount_point = at
    if mount_point is not None:
        with contextlib.suppress(OSError):
            kept += os.lstat(mount_point / "lost+found").st_blocks * 512
    return kept


def too_big(folders: dict[str, Path], size: int | None) -> str | None:
    """Why a download of ``size`` bytes can never fit on a disk of ``folders``, or None."""
    for what, folder in folders.items():
        usage = _usage(folder)
        if size and usage is not None and size > usage[0]:
            return (f"The download ({human_size(size)}) is larger than the whole disk of the "
                    f"{what} {folder} ({human_size(usage[0])}): it cannot be downloaded there.")
    return None


def too_often(waits: int) -> str:
    return (f"The disk filled up {waits} times while this download ran: it needs more room "
            "than the disk has free. Free some space, then start it again.")
