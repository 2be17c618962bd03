"""A finished download's move into the download folder: whole, or not there at all.

yt-dlp moves each finished file out of the temporary folder with ``shutil.move``. Between two
disks (the temporary folder on a Pi's SD card, the download folder on a USB disk) that is a
copy under the file's own name, then the removal of the original: a power cut or a
``kill -9`` during the copy of a large file left a cut file under the final name, and the
next try of the item took it for the download, "already downloaded". It finished with the cut
file, and the whole one was removed with the temporary folder.

Here the copy is made under a hidden name beside the target (the same for each try of that
target, so a try after a crash writes over what the crash left), written to the disk
(``fsync``), then renamed to the final name, and only then is the original removed. Within one
disk the move stays a rename, of a file written to the disk first: the item is stored as
finished once its file has moved, and on ext4 (delayed allocation) a power cut soon after the
rename of a file not yet written could leave it empty under its name.

Neither replaces a file that landed under the final name meanwhile (another download's of the
same name, during a copy of minutes): the name is taken with a hard link, which refuses to
replace, then the old name removed; a file system without hard links (FAT, exFAT) renames.

What a crash leaves of a copy is written over by the next try of that file; one no try comes
back to (its item deleted, or its next try named differently) is removed by the file index
once it is ``LEFT_OVER_AFTER`` old (``left_over``): on a Pi's disk it may be gigabytes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat

MOVING_PREFIX = ".appliance-moving-"
_MOVING_NAME = re.compile(re.escape(MOVING_PREFIX) + "[0-9a-f]{16}")
# A copy being made is written all along, then synced and renamed within minutes: one whose
# inode has not changed for this long (its ctime; copy2 sets its mtime to the source's) is
# what a crash or a power cut stopped.
LEFT_OVER_AFTER = 6 * 3600.0


def moving_name(target: str) -> str:
    """The hidden name ``target`` is copied under before it takes its own: short (a target's
    name may use all 255 bytes a name may have) and the same for each try."""
    digest = hashlib.sha256(os.path.basename(target).encode("utf-8", "surrogateescape"))
    return os.path.join(os.path.dirname(target), MOVING_PREFIX + digest.hexdigest()[:16])


def left_over(name: str, status: os.stat_result, now: float) -> bool:
    """Whether the file ``name`` (``status``: its ``lstat``) is a copy a crash left."""
    return (_MOVING_NAME.fullmatch(name) is not None and stat.S_ISREG(status.st_mode)
            and now - status.st_ctime > LEFT_OVER_AFTER)


def _one_disk(source: str, folder: str) -> bool:
    try:
        return os.stat(source).st_dev == os.stat(folder or ".").st_dev
    except OSError:
        return False  # (the copy says what is wrong)


def _sync_file(path: str) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _sync_folder(folder: str) -> None:
    with contextlib.suppress(OSError):  # (a file system that cannot: the rename stands)
        fd = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def move_whole(source: str, target: str) -> str:
    """``shutil.move`` for one file whose copy is never seen under ``target`` unless whole,
    and which never replaces a file that landed under ``target`` during the move (another
    download's of the same name, a copy between two disks taking minutes): ``source`` stays
    where it is then, for the job to say it found a file there (``move_check``)."""
    if os.path.isdir(source) or os.path.isdir(target):
        return shutil.move(source, target)
    folder = os.path.dirname(target)
    if _one_disk(source, folder):
        _sync_file(source)
        try:
            _publish(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # (one disk mounted twice: copied as between two)
                raise
        else:
            _sync_folder(folder)
            return target
    moving = moving_name(target)
    try:
        shutil.copy2(source, moving)
        _sync_file(moving)
        published = _publish(moving, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(moving)
        raise
    if not published:
        os.remove(moving)
        return target
    _sync_folder(folder)
    os.remove(source)
    return target


def _publish(path: str, target: str) -> bool:
    """``path`` renamed to ``target`` unless a file is there: False then, ``path`` left as it
    is. A hard link then the old name's removal, as a rename cannot refuse to replace; a file
    system without hard links gets the rename."""
    try:
        os.link(path, target, follow_symlinks=False)
    except FileExistsError:
        return False
    except OSError:
        # No hard links there (FAT, exFAT: EPERM; a share may say otherwise): the rename.
        # Whatever refuses the rename as well (EXDEV, EACCES, a full disk) is the move's.
        os.replace(path, target)
        return True
    os.unlink(path)
    return True


class _Shutil:
    """What yt-dlp's move post-processor reaches for under the name ``shutil``."""

    move = staticmethod(move_whole)

    def __getattr__(self, name: str) -> object:
        return getattr(shutil, name)


def move_files_whole() -> None:
    """In a download process (the zygote, before it forks). Skipped if yt-dlp's internals
    moved: its own move runs then."""
    with contextlib.suppress(ImportError):
        from yt_dlp.postprocessor import movefilesafterdownload

        if hasattr(movefilesafterdownload, "shutil"):
            movefilesafterdownload.shutil = _Shutil()


def moves_whole() -> bool:
    """Whether yt-dlp's move in this process is ``move_whole`` (``move_files_whole`` ran)."""
    with contextlib.suppress(ImportError):
        from yt_dlp.postprocessor import movefilesafterdownload

        return isinstance(getattr(movefilesafterdownload, "shutil", None), _Shutil)
    return False
