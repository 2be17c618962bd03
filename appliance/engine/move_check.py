"""What a download looks at right before yt-dlp moves its finished files from the temporary
folder into the download folder (``FolderMarkCheck``), and what it takes back when the move
fails part way.

Part of the download process (``engine.child``). The service checks the download folder's
disk every few seconds (``folder_disk``); a download that ends between two checks looks
itself, so that its files stay in the temporary folder, whole, and the item waits (the
engine is told why by the error's ``flag``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from yt_dlp.postprocessor.common import PostProcessor
from yt_dlp.utils import LINK_TEMPLATES, DownloadCancelled, replace_extension
from yt_dlp.utils._utils import _desktop_entry_localestring

from ..units import human_size
from .file_moves import moves_whole
from .folder_disk import read_only, token_in

log = logging.getLogger("appliance.child")


class KeptBack(DownloadCancelled):
    """The job's files wait in its temporary folder instead of moving into the download
    folder; ``flag`` tells the engine why."""

    flag = ""


class FolderGone(KeptBack):
    """The download folder lost its mark, or its disk turned read-only, as the job ended
    (folder_disk)."""

    flag = "folder_gone"


class NoRoom(KeptBack):
    """The download folder's disk has no room for the job's files (disk_room)."""

    flag = "no_room"


# What yt-dlp writes of a video as its job starts, before the media, by their templates'
# kinds: in the temporary folder (``child``), then home with the media (``StartingSidecars``).
# "link": the internet shortcuts of --write-link (and --write-url-link, ...).
STARTING_SIDECARS = ("description", "infojson", "link")


class StartingSidecars(PostProcessor):
    """Before the download: the sidecars yt-dlp wrote as the job started (its .info.json,
    its .description, its internet shortcuts) go home with the media, in yt-dlp's move.
    Written in the download folder at once, they stayed there, no item's, out of any
    delete's reach, when the job was stopped (a delete, a cancel) or failed."""

    def set_downloader(self, downloader: Any) -> None:
        super().set_downloader(downloader)
        self._progress_hooks = []  # a step of the job's start: no post-processing to say

    def run(self, information: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        paths = self._downloader.params["paths"]
        moving = information.setdefault("__files_to_move", {})
        for kind in STARTING_SIDECARS:
            for path in self._written(information, kind):
                if os.path.isfile(path):
                    # where yt-dlp wrote it before: its own template's name under home
                    home = os.path.join(paths["home"], os.path.relpath(path, paths[kind]))
                    if path.endswith(".desktop"):
                        named_home(path, home)
                    moving.setdefault(path, home)
        return [], information

    def _written(self, information: dict[str, Any], kind: str) -> list[str]:
        """Where yt-dlp wrote the files of ``kind`` (as it names them)."""
        path = self._downloader.prepare_filename(information, kind)
        if not path or kind != "link":
            return [path] if path else []
        return [replace_extension(path, ext, information.get("ext"),
                                  _allowed_exts=tuple(LINK_TEMPLATES))
                for ext in LINK_TEMPLATES]


def named_home(desktop: str, home: str) -> None:
    """A .desktop shortcut is named by its own path (its Name=, what a file manager shows):
    the one it will have home, not the temporary folder's."""
    with open(desktop, encoding="utf-8") as file:
        text = file.read()
    name = _desktop_entry_localestring  # (yt-dlp's escape of a name in a .desktop)
    text = text.replace(f"Name={name(desktop[:-len('.desktop')])}\n",
                        f"Name={name(home[:-len('.desktop')])}\n", 1)
    with open(desktop, "w", encoding="utf-8") as file:
        file.write(text)


def moves(information: dict[str, Any]) -> dict[str, str]:
    """The files yt-dlp moves next and where to (as its MoveFilesAfterDownloadPP names them)."""
    filepath = information.get("filepath")
    finaldir = information.get("__finaldir")
    planned = dict(information.get("__files_to_move") or {})
    if filepath and finaldir:
        planned[filepath] = os.path.join(finaldir, os.path.basename(filepath))
    return {old: new or os.path.join(finaldir or os.path.dirname(old), os.path.basename(old))
            for old, new in planned.items()}


def bytes_to_move(files: dict[str, str], folder: Path) -> int:
    """What ``files`` take on ``folder``'s disk: one on another disk (the temporary folder's)
    is copied there, one on the same disk only renamed."""
    try:
        device = os.stat(folder).st_dev
    except OSError:
        return 0
    total = 0
    for path in files:
        with contextlib.suppress(OSError):
            found = os.stat(path)
            total += found.st_size if found.st_dev != device else 0
    return total


class FolderMarkCheck(PostProcessor):
    """The last step before yt-dlp moves the finished files into the download folder: the
    folder still has its mark (``token``; None: none to check), so it is not the bare mount
    point of a disk unplugged since the service last looked (up to folder_disk.CHECK_SECONDS
    ago); its disk is still writable (the system makes a failing disk read-only); and it has
    room for them. A move that ran out of room left a cut copy under the file's own name,
    which the download's next try took for the whole file, already downloaded."""

    def __init__(self, folder: str, token: str | None) -> None:
        super().__init__()
        self._folder = folder
        self._token = token
        self._moving: dict[str, str] = {}  # what is moved to a name no file had
        self._found = False  # a file was under the download's name at the check
        self._own: str | None = None  # the job's own file, to be moved there

    def run(self, information: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        folder = Path(self._folder)
        if self._token is not None and token_in(folder) != self._token:
            raise FolderGone(f"The download folder {folder} lost its disk as the download "
                             "ended; its files wait in the temporary folder.")
        if read_only(folder):
            raise FolderGone(f"The download folder {folder}'s disk turned read-only as the "
                             "download ended; its files wait in the temporary folder.")
        self._keep_a_file_under_its_name(information)
        files = moves(information)
        needed = bytes_to_move(files, folder)
        free = shutil.disk_usage(folder).free if needed else 0
        if needed > free:
            raise NoRoom(f"The download folder {folder}'s disk has "
                         f"{human_size(free) or 'nothing'} free, and the download's files "
                         f"need {human_size(needed)}: they wait in the temporary folder.")
        self._moving = {old: new for old, new in files.items() if not os.path.lexists(new)}
        return [], information

    def _keep_a_file_under_its_name(self, information: dict[str, Any]) -> None:
        """A file under the download's name (yt-dlp found it there as the job began, or one
        landed while it ran) is what the job ends with, untouched. yt-dlp would replace one
        that landed: the file of another download of the same name (two videos titled
        'Trailer' under a template without the id, run at once), whose item then named this
        one's video, its own lost. The job's own file stays in the temporary folder."""
        params = self._downloader.params if self._downloader is not None else {}
        if params.get("overwrites") is None:  # (not a person's --force-overwrites)
            # yt-dlp's move removed a file under a target's name, then moved its own there:
            # the other download's look at the file it had just moved there fell in between
            # and found none ('skip', "wrote no file"). The file there is kept instead.
            params["overwrites"] = False
        filepath = information.get("filepath")
        target = moves(information).get(filepath) if filepath else None
        if target is None:
            return
        if os.path.abspath(target) == os.path.abspath(filepath):
            self._found = True
        elif os.path.lexists(target):
            information["filepath"], self._found = target, True
        else:
            self._own = filepath

    def found(self) -> bool:
        """After the job: whether the download's file is one that was under its name, not
        one this job moved there (the engine judges whose it is: another video's of the same
        name is not this item's). One may land between the check and the move, which then
        leaves the job's own file where it was."""
        return self._found or (self._own is not None and os.path.lexists(self._own))

    def take_back(self) -> None:
        """The job failed after the check (the disk filled up during the move, another
        download's files taking the room): each copy shorter than its file, still in the
        temporary folder, is a cut one, and goes. The file stays whole where it was, for the
        next try. A file as long or longer under the name is whole: this job's, or another
        download's of the same name that landed meanwhile (which went with the cut ones).
        Only yt-dlp's own move leaves a cut copy under the name: the whole move's is under a
        hidden one it removes itself, so then whatever is under the name is whole, and
        another download's shorter file of that name stays too."""
        if moves_whole():
            return
        for old, new in self._moving.items():
            try:
                copy = os.lstat(new)
                cut = stat.S_ISREG(copy.st_mode) and copy.st_size < os.stat(old).st_size
            except OSError:
                continue
            if cut:
                try:
                    os.remove(new)
                except OSError as exc:
                    log.warning("could not remove the cut copy %s (%s)", new, exc)
