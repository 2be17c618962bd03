"""What the file actions change on the disk, done through open folders.

An action's paths are checked (files.paths, files.actions), then it acts; between the two,
whoever can write in the download folder can swap a folder of the path for a symlink that
leads out. So an action opens the folder it changes once, without following a symlink in its
last component, and judges it as opened (the kernel's own name for it, ``/proc/self/fd``: the
folder that was checked, inside the download folder); what it then removes, renames or makes
is named relative to that open folder, whatever becomes of the path meanwhile.

A folder is removed without recursion and with a bounded number of folders open (Python
3.11's ``shutil.rmtree`` recursed once per level: a tree a thousand folders deep raised
RecursionError, a 500). A folder that is, or holds, a mount point is never removed: the disk
mounted there would be emptied file by file before the system refused to remove the mount
point itself (``EBUSY``, after everything on it was gone). A rename never replaces what it
finds: ``renameat2(RENAME_NOREPLACE)`` where the file system has it, else a check just before.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import AnyStr

from .. import errors
from .names import api_form

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Folders held open at once while a tree is removed; a deeper one is moved up first.
OPEN_FOLDERS = 32
_RENAME_NOREPLACE = 1
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


class Exists(Exception):
    """What a rename was to create is there already."""


def open_folder(path: Path, root: Path) -> int:
    """``path`` (a real folder inside ``root``) opened: 403 when, as opened, it is another
    folder than ``path`` names (a part of it swapped for a symlink), or lies outside."""
    try:
        fd = os.open(path, _FOLDER)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise changed(path) from None
        raise
    opened = os.readlink(f"/proc/self/fd/{fd}")
    real_root = os.path.realpath(root)
    if opened != str(path) or not (opened == real_root or opened.startswith(real_root + os.sep)):
        os.close(fd)
        raise changed(path)
    return fd


def changed(path: Path) -> errors.AppError:
    return errors.AppError(f"'{api_form(path.name)}' was replaced (by a link, or moved) while the "
                           "action ran.", errors.CONFLICT)


def mounts_within(path: Path) -> list[str]:
    """The mount points at or below ``path`` (a real path), from this process's view."""
    prefix = str(path).rstrip(os.sep) + os.sep
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
        for line in table:
            point = _unescaped(line.split(" ")[4])
            if point == str(path) or point.startswith(prefix):
                found.append(point)
    return found


def _unescaped(field: str) -> str:
    r"""A mountinfo field as the path it names (``\040`` for a space, ``\134`` a backslash)."""
    if "\\" not in field:
        return field
    raw = field.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C and raw[i + 1:i + 4].isdigit():
            out.append(int(raw[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def remove_tree(parent: int, name: str) -> None:
    """The folder ``name`` of the open folder ``parent`` with all it holds. Depth first, no
    recursion, each folder listed once; below OPEN_FOLDERS levels the folders are moved up
    under the top one (renamed within the tree being removed) and removed from there, so any
    depth needs no more folders open than that."""
    top = os.open(name, _FOLDER, dir_fd=parent)
    # open folders, each with its name and the folders in it still to remove
    stack: list[tuple[int, str, list[str]]] = [(top, name, _files_removed(top))]
    try:
        while stack:
            fd, current, left = stack[-1]
            if not left:
                stack.pop()
                os.close(fd)
                os.rmdir(current, dir_fd=stack[-1][0] if stack else parent)
            elif len(stack) < OPEN_FOLDERS:
                sub = left.pop()
                opened = os.open(sub, _FOLDER, dir_fd=fd)
                stack.append((opened, sub, _files_removed(opened)))
            else:
                while left:
                    moved = f".removing-{secrets.token_hex(8)}"
                    os.rename(left.pop(), moved, src_dir_fd=fd, dst_dir_fd=top)
                    stack[0][2].append(moved)
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def _files_removed(fd: int) -> list[str]:
    """Unlink every entry of the open folder ``fd`` but its folders; their names."""
    folders = []
    for entry in os.listdir(fd):
        if stat.S_ISDIR(os.lstat(entry, dir_fd=fd).st_mode):
            folders.append(entry)
        else:
            os.unlink(entry, dir_fd=fd)
    return folders


def walk(top: AnyStr) -> Iterator[tuple[AnyStr, list[AnyStr], list[AnyStr]]]:
    """(folder, the folders in it, its other entries) for ``top`` and every folder below it,
    each folder before those below it, as ``os.walk`` gives them but without recursion. A
    symlink is an entry, never followed; a folder that cannot be read is passed over."""
    pending = [top]
    while pending:
        folder = pending.pop()
        folders: list[AnyStr] = []
        others: list[AnyStr] = []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    (folders if entry.is_dir(follow_symlinks=False) else others).append(
                        entry.name)
        except OSError:  # gone meanwhile, no permission, or a path over PATH_MAX
            continue
        yield folder, folders, others
        pending.extend(os.path.join(folder, name) for name in reversed(folders))


def rename(source: int, name: str, target: int, new_name: str) -> None:
    """``name`` of the open folder ``source`` renamed ``new_name`` in ``target``; Exists when
    that name is taken (never replaced)."""
    if _renameat2 is not None:
        if _renameat2(source, os.fsencode(name), target, os.fsencode(new_name),
                      _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise Exists(new_name)
        if code not in (errno.EINVAL, errno.ENOSYS):  # else: the file system has no NOREPLACE
            raise OSError(code, os.strerror(code), name)
    try:
        os.lstat(new_name, dir_fd=target)
    except FileNotFoundError:
        os.rename(name, new_name, src_dir_fd=source, dst_dir_fd=target)
    else:
        raise Exists(new_name)
