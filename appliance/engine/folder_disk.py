"""Whether the download folder is still on its disk.

A download folder on a USB disk (or a network share) is the usual home-server layout. When that
disk is unplugged or unmounted, what is left is its mount point: an empty folder on the
system's own disk (or no folder at all, when the download folder lies deeper on the disk).
Downloads written there would fill the system's disk -- the database's too -- and be hidden
under the disk once it is mounted again. So the mount point the download folder lies on is
noted, and checked every few seconds (``check``) in a thread of its own -- not the
scheduler's: a network share that stops answering blocks whoever looks at it, and only this
thread should wait for it. While it is not mounted, or
the folder is missing, no download starts; the queue waits and goes on by itself once the disk
is back. The change is logged once each way (an error reaches websocket clients and
notification targets).

A folder on the system's own disk (its mount point is ``/``) is only checked for being there.

The disk can also be missing when the service starts (a USB disk slower to mount than the
service to start, an fstab line with ``nofail``). Its mount point cannot tell then: the folder
found lies on the system's disk as if it always had, and under the systemd unit the folder is
a mount point of its own anyway (``ReadWritePaths=`` mounts it in the service's namespace). So
the folder carries a mark: a hidden file (``MARKER``) holding a token the config folder keeps
too (``RECORD``). A folder without the token it was last seen with is not the one downloads
went to: downloads wait the same way, and the text says how to take the new folder instead.
On the very first start there is no mark yet; what tells then is the system's table of disks
(``FSTAB``): a mount point it lists, at or above the folder, that lies on the same disk as its
parent folder is not mounted (a bind mount onto it would not change that, so the unit's own
``ReadWritePaths=`` cannot hide it). Downloads wait, and the folder is not marked until the
disk is there: a mark on the bare mount point would make the disk's folder "not the one" later.
A disk no table lists (mounted by hand or by a desktop) cannot be told on the first start.
A download that ends between two checks looks at the mark itself, right before yt-dlp moves
its files into the folder (``move_check.FolderMarkCheck``).

A disk that is there but read-only (mounted so, or turned read-only by the kernel after write
errors: ext4's ``errors=remount-ro``, what a failing USB disk on a Pi does) makes downloads
wait the same way: each would otherwise fail at its end, the whole queue one after another,
and none goes on once the disk is writable again. A download that ends in the seconds before
the check sees it looks itself (``move_check.FolderMarkCheck``), as for the mark.

A disk that is full (the download folder's or the temporary folder's: ``disk_room``) makes
downloads wait too, from the moment a download finds it so (``filled``) until it has room again.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from ..atomic import write_atomic
from ..mount_table import unescape
from . import disk_room

log = logging.getLogger(__name__)

CHECK_SECONDS = 5
MARKER = ".appliance-folder"  # in the download folder (hidden: the file index skips it)
MARK_BYTES = 64  # a token is 32 hex digits
RECORD = "download_folder.json"  # in the config folder: {"folder": ..., "token": ...}
FSTAB = Path("/etc/fstab")
FSTAB_BYTES = 1 << 20
# fstab lines that are no disk of their own: a bind mount is on its source's disk
NOT_A_DISK = {"swap", "none"}


def missing(folder: Path) -> str:
    """What is said while the download folder is not there."""
    return (f"The download folder {folder} is missing (is its disk mounted?): downloads wait "
            "until it is back.")


def not_the_one(folder: Path, record: Path) -> str:
    """What is said while the download folder lacks its mark."""
    return (f"The download folder {folder} is not the folder downloads went to until now (the "
            f"file {MARKER} the service keeps in it is missing): is its disk mounted? "
            f"Downloads wait until it is back. To use this folder from now on, remove {record}.")


def token_in(folder: Path) -> str | None:
    """The token of ``folder``'s mark; None without one (or unreadable). The download folder
    may be shared (Samba, a media group): whoever can write there may put a FIFO, a link to
    /dev/zero or a huge file in the mark's place, so only a regular file's first bytes are
    read, without following a link or waiting for a writer."""
    try:
        fd = os.open(folder / MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, MARK_BYTES).decode("ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)


def listed_mount_points(folder: Path, fstab: Path) -> list[Path]:
    """The mount points ``fstab`` lists at or above ``folder`` (resolved), outermost first.
    Its mount points are taken as written (canonical, as ``mount`` needs them): resolving one
    would touch every network share it lists, and a share that hangs would hang the start."""
    try:
        with open(fstab, encoding="utf-8", errors="replace") as table:
            lines = table.read(FSTAB_BYTES).splitlines()
    except OSError:
        return []
    real = Path(os.path.realpath(folder))
    points = set()
    for line in lines:
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith("#") or fields[2] in NOT_A_DISK:
            continue
        if {"bind", "rbind"} & set(fields[3].split(",") if len(fields) > 3 else ()):
            continue
        point = Path(os.path.normpath(unescape(fields[1])))
        if point.is_absolute() and point != Path("/") and real.is_relative_to(point):
            points.add(point)
    return sorted(points, key=lambda point: len(point.parts))


def not_mounted(points: list[Path]) -> Path | None:
    """The first of ``points`` with no disk mounted on it: on its parent's disk, or gone."""
    for point in points:
        try:
            if os.stat(point).st_dev == os.stat(point.parent).st_dev:
                return point
        except OSError:
            return point
    return None


def read_only(folder: Path) -> bool:
    """Whether ``folder``'s disk is mounted read-only (False when that cannot be asked)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def mount_point(folder: Path) -> Path:
    """The mount point of the disk ``folder`` lies on (of its nearest existing parent)."""
    path = Path(os.path.realpath(folder))
    while not os.path.ismount(path):
        path = path.parent
    return path


class FolderDisk:
    """The download folder's disk, as ``check`` last found it: ``problem`` says why
    downloads wait (None: they need not); ``gone``, why the folder cannot be read (None while
    it can, on a read-only disk too: its files are there to list, fetch and play)."""

    def __init__(self, folder_of: Callable[[], Path], on_change: Callable[[], None],
                 config_path: Path, temp_of: Callable[[], Path] | None = None) -> None:
        self._folder_of = folder_of
        self._temp_of = temp_of
        self._on_change = on_change
        self._record = config_path / RECORD
        self._watched: tuple[Path, Path] | None = None  # (the folder, its mount point)
        self._listed: list[Path] = []  # the mount points the fstab lists above the folder
        self._unmarked = False  # the folder's disk was not mounted, so no mark was made
        self._token: str | None = None  # the folder's mark (None: it could not be made)
        # check() runs in its thread, and in a download's that found the mark gone
        self._checking = threading.Lock()
        self.problem: str | None = None
        self.gone: str | None = None
        # What is said while a disk is short of room (filled), kept as first said until it
        # has room: its free bytes change meanwhile, and each change would be said again.
        self.short_of_room: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.note()
        self.check()  # before the first download: the disk may be missing already
        self._thread = threading.Thread(target=self._watch, name="folder-disk", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()  # not joined: a check stuck on a hung share must not hold the stop

    def _watch(self) -> None:
        while not self._stop.wait(CHECK_SECONDS):
            try:
                self.check()
            except Exception:  # a bug must not end the watch: the queue would never resume
                log.exception("checking the download folder's disk failed")

    def note(self) -> None:
        """Note the folder's mount point as it is now and the mark it was last seen with (at
        start, and for a new folder); a folder never seen before is marked."""
        folder = self._folder_of()
        self._watched = (folder, mount_point(folder))
        self._listed = listed_mount_points(folder, FSTAB)
        self._token = self._recorded(folder)
        self._unmarked = self._token is None and not_mounted(self._listed) is not None
        if self._token is None and not self._unmarked:
            self._token = self._mark(folder)

    def _recorded(self, folder: Path) -> str | None:
        """The token ``folder`` was last seen with, if the record is about that folder."""
        try:
            record = json.loads(self._record.read_text())
            if record["folder"] == str(folder) and isinstance(record["token"], str):
                return record["token"]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("ignoring %s, which cannot be read (%s)", self._record, exc)
        return None

    def _mark(self, folder: Path) -> str | None:
        """Mark ``folder`` (or take the mark it has) and keep its token in the record."""
        if not folder.is_dir():
            return None
        token = token_in(folder)
        try:
            if token is None:
                token = secrets.token_hex(16)
                write_atomic(folder / MARKER, token + "\n")
            write_atomic(self._record, json.dumps({"folder": str(folder), "token": token}))
        except OSError as exc:  # the downloads themselves will say what is wrong
            log.warning("cannot mark the download folder %s (%s): a start without its disk "
                        "will not be noticed", folder, exc)
            return None
        return token

    def mark(self, folder: Path) -> dict[str, str] | None:
        """What a download checks right before its files move into ``folder`` (the last
        seconds before a periodic check): the mark, while ``folder`` is the one watched."""
        watched, token = self._watched, self._token
        if watched is None or watched[0] != folder or token is None:
            return None
        return {"folder": str(folder), "token": token}

    @property
    def held(self) -> str | None:
        """Why the folder's files may not be changed now (its disk gone or read-only); None
        while they may, on a disk short of room too: what is removed makes the room."""
        problem = self.problem
        return None if problem == self.short_of_room else problem

    def folders(self) -> dict[str, Path]:
        """The folders downloads write to, named by what they hold."""
        folders = {"download folder": self._folder_of()}
        if self._temp_of is not None:
            folders = {disk_room.TEMPORARY: self._temp_of(), **folders}
        return folders

    def filled(self) -> None:
        """A download found a disk full: downloads wait while a disk is short of room (and are
        not held when none is: a quota, a file that was removed as the download failed)."""
        with self._checking:
            if self.short_of_room is None:  # as first said, by the first download to find it
                self.short_of_room = disk_room.short(self.folders())
        self.check()

    def check(self) -> None:
        with self._checking:
            changed = self._check()
        if changed:
            self._on_change()

    def _check(self) -> bool:
        """Look again; whether the problem changed (logged here, announced by ``check``)."""
        if (self._watched is None or self._watched[0] != self._folder_of()
                or (self._token is not None and not self._record.exists())):
            # The settings named another folder, or the record was removed to take the
            # folder as it is: its disk and its mark are as found now.
            self.note()
        elif self._unmarked and not_mounted(self._listed) is None:
            # The disk came: the folder is made on it, as at a start with the disk there
            # (the start made it on the bare mount point), then noted and marked.
            try:
                self._watched[0].mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning("cannot make the download folder %s on its disk (%s)",
                            self._watched[0], exc)
            self.note()
        assert self._watched is not None
        folder, mounted_at = self._watched
        unmounted = not_mounted(self._listed)
        if unmounted is not None:
            problem = (f"The download folder {folder} is on the disk {FSTAB} mounts at "
                       f"{unmounted}, which is not mounted: downloads wait until it is "
                       "(written there, they would fill the system's disk).")
        elif mounted_at != Path("/") and not os.path.ismount(mounted_at):
            problem = (f"The download folder {folder} is on the disk mounted at {mounted_at}, "
                       "which is not mounted any more: downloads wait until it is back "
                       "(written there, they would fill the system's disk).")
        elif not folder.is_dir():
            problem = missing(folder)
        elif self._token is not None and token_in(folder) != self._token:
            problem = not_the_one(folder, self._record)
        else:
            problem = None
        self.gone = problem
        if problem is None and read_only(folder):
            problem = (f"The download folder {folder} is on a disk that is read-only (mounted "
                       "so, or made so by the system after write errors: check the disk): "
                       "downloads wait until it can be written.")
        short = self.short_of_room
        if short is not None and disk_room.short(self.folders()) is None:
            self.short_of_room = None
        if problem is None:
            problem = self.short_of_room
        if problem == self.problem:
            return False
        if problem is not None:
            log.error("%s", problem)
        elif self.problem == short:
            log.warning("The disks have room again: waiting downloads go on.")
        else:
            log.warning("The download folder %s is back: waiting downloads go on.", folder)
        self.problem = problem
        return True
