"""The file browser's actions: rename, delete, move, directory (YTPTube's four).

A request is an array; every action is checked first (its fields, its paths' form, that they
resolve inside the download folder), and one refusal refuses the request (400/403) before
anything is done. Then each runs and gets a result (``ok``, and ``error`` when it failed: gone,
already there); each result is published on the bus (``file_action``) and the index is
refreshed at once, so the next listing shows it whatever the watcher does.

Each action's paths are checked again just before it runs, on the folder as the actions before
it left it: a relative symlink that one of them moved leads elsewhere (``a/link`` ->
``../../x`` is inside from ``a``, outside from the folder above), and the checks made before
the first action had let the next ones delete, rename and write outside through it.

The entry an action works on is the link itself when it is a symlink (a delete removes the
link, never what it points to); a symlink that leads outside the folder is refused. A file
renamed or moved takes its own sidecars along (``name.en.srt``, ``name.info.json``…;
``kinds.own_sidecars``): YTPTube took every ``name.*``, another video named like it too.

What an action changes it changes through the folders it opened (files.trees): a folder swapped
for a link after the check is not acted in, a rename never replaces a name taken meanwhile, a
delete never empties a disk mounted in the folder it removes. What can be known before acting
is checked before: a new folder that could not be made whole, a sidecar whose new name would be
too long (each failed part way, and the answer said nothing was done).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .. import errors, in_use, kinds
from ..path_limits import NAME_MAX, byte_length, real_path, too_long
from . import paths, trees
from .index import FileIndex
from .names import api_form, disk_part

log = logging.getLogger(__name__)

ACTIONS = ("rename", "delete", "move", "directory")
MAX_ACTIONS = 1000
# Folders below the download folder a new folder may lie at most.
MAX_DEPTH = 64
# The field each action needs besides ``path``, and what it is.
_NEEDS = {"rename": ("new_name", "the new name (one name, without slashes)"),
          "move": ("new_path", "the folder to move it into, relative to the download folder"),
          "directory": ("new_dir", "the folder to make inside path (a/b makes both)")}
_EXAMPLE = '{"action": "delete", "path": "folder/file.mp4"}'
_ACTIONS_SAID = "rename, delete, move or directory"
_JSON_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "true or false",
               int: "a number", float: "a number", type(None): "null"}


@dataclasses.dataclass
class Planned:
    action: str
    params: dict[str, Any]  # as the request gave them: checked again when the action runs
    source: Path  # the entry itself (its last component not followed)
    argument: Any = None  # new name / target folder (real) / components of the new folder


def entry_path(root: Path, requested: str) -> Path:
    """The entry ``requested`` names, its folder resolved inside ``root`` and its own name not
    followed; 403 when it is a symlink leading outside, 400 for the folder itself."""
    parts = paths.relative_parts(requested)
    if not parts:
        raise errors.invalid("path names the download folder itself, which the file browser "
                             "does not rename, move or delete: give a file or a folder in it.")
    folder = paths.resolve(root, "/".join(parts[:-1]))
    entry = folder / disk_part(str(folder), parts[-1])
    if entry.is_symlink():
        real_root = os.path.realpath(root)
        try:
            target = real_path(entry)
        except OSError:  # a chain of links the system does not follow: the link leads nowhere
            return entry
        if target != real_root and not target.startswith(real_root + os.sep):
            raise paths.outside()
    return entry


def _kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), "another value")


def plan(root: Path, body: Any) -> list[Planned]:
    """Every action of ``body`` checked; 400/403 for the first refused, which it names when
    there are several."""
    if not isinstance(body, list):
        raise errors.invalid(f"The body must be a JSON array of actions, such as "
                             f"[{_EXAMPLE}]; it is {_kind(body)}.")
    if not body:
        raise errors.invalid(f"The array of actions is empty: give at least one, such as "
                             f"{_EXAMPLE}.")
    if len(body) > MAX_ACTIONS:
        raise errors.invalid(f"At most {MAX_ACTIONS} actions at once.")
    planned = []
    for number, params in enumerate(body, start=1):
        try:
            if not isinstance(params, dict):
                raise errors.invalid(f"Each action must be a JSON object, such as {_EXAMPLE}; "
                                     f"this one is {_kind(params)}.")
            planned.append(plan_one(root, params))
        except errors.AppError as exc:
            if len(body) > 1:
                exc.message = f"Action {number} of {len(body)}: {exc.message}"
            raise
    return planned


def plan_one(root: Path, params: dict[str, Any]) -> Planned:
    """One action checked on the folder as it is now; 400/403 when refused."""
    given = params.get("action")
    action = given.lower() if isinstance(given, str) else ""
    if action not in ACTIONS:
        raise errors.invalid(_no_action(given))
    requested = params.get("path")
    if not isinstance(requested, str) or not requested:
        raise errors.invalid(_no_path(action, requested))
    need, what = _NEEDS.get(action, ("", ""))
    if need and not params.get(need):
        raise errors.invalid(f"{need} is missing: the {action} action needs {what}.")
    if action == "directory":
        return _new_folder(root, requested, paths.check_subpath(params[need], need), params)
    if action == "rename":
        return Planned(action, params, entry_path(root, requested),
                       paths.check_name(params[need], need))
    if action == "move":
        if not isinstance(params[need], str):
            raise errors.invalid(f"{need} must be a string: {what}; it is "
                                 f"{_kind(params[need])}.")
        return Planned(action, params, entry_path(root, requested),
                       paths.resolve(root, params[need]))
    return Planned(action, params, entry_path(root, requested))


def _no_action(given: Any) -> str:
    if given in (None, ""):
        return f"action is missing: give one of {_ACTIONS_SAID}."
    if isinstance(given, str):
        return f"action {given!r} is not one the file browser has: give one of {_ACTIONS_SAID}."
    return f"action must be a string, one of {_ACTIONS_SAID}; it is {_kind(given)}."


def _no_path(action: str, given: Any) -> str:
    if given in (None, ""):
        return (f"path is missing: the {action} action needs the path of a file or a folder, "
                f"relative to the download folder.")
    return f"path must be a string, relative to the download folder; it is {_kind(given)}."


def _new_folder(root: Path, requested: str, parts: list[str], params: dict[str, Any]
                ) -> Planned:
    """A ``directory`` action, refused before anything is made when the folder could not be
    made whole (a path over the system's limit failed part way, the folders before it left)
    or would lie deeper than MAX_DEPTH (no library needs more; one request makes no more
    folders than that)."""
    source = paths.resolve(root, requested)
    made = source.joinpath(*parts)
    if problem := too_long(str(made), parts):
        raise errors.invalid(f"new_dir would make a path that {problem}.")
    if len(made.relative_to(os.path.realpath(root)).parts) > MAX_DEPTH:
        raise errors.invalid(f"new_dir would make a folder more than {MAX_DEPTH} levels deep "
                             "in the download folder.")
    return Planned("directory", params, source, parts)


def _said(exc: OSError) -> str:
    if exc.errno == errno.EXDEV:  # the system says "Invalid cross-device link"
        return ("The destination is on another disk: the file browser moves files within "
                "one disk only.")
    return exc.strerror or str(exc)


class Failed(Exception):
    """One action could not be done; its result says why."""


class FileActions:
    def __init__(self, index: FileIndex, publish: Callable[[dict[str, Any]], None]) -> None:
        self.index = index
        self.publish = publish

    def run(self, root: Path, body: Any) -> list[dict[str, Any]]:
        results = []
        for checked in plan(root, body):
            item = checked
            touched: list[Path] = [item.source]
            result: dict[str, Any] = {"path": _rel(root, item.source), "action": item.action}
            try:
                item = plan_one(root, checked.params)  # on what the actions before left
                touched = [item.source]
                extra = getattr(self, "_" + item.action)(root, item, touched)
                result.update(ok=True, status=True, **extra)
            except errors.AppError as exc:
                log.warning("%s of %s refused as it ran: %s", item.action, item.source,
                            exc.message)
                result.update(ok=False, status=False, error=exc.message)
            except Failed as exc:
                result.update(ok=False, status=False, error=str(exc))
            except OSError as exc:
                log.warning("%s of %s failed: %s", item.action, item.source, exc)
                result.update(ok=False, status=False, error=_said(exc))
            self.index.refresh([str(p) for p in touched] + [str(p.parent) for p in touched])
            if result["ok"]:
                log.info("file %s: %s", item.action, {k: v for k, v in result.items()
                                                       if k in ("path", "new_path", "new_dir")})
            self.publish(result)
            results.append(result)
        return results

    def _delete(self, root: Path, item: Planned, touched: list[Path]) -> dict[str, Any]:
        with _opened(item.source.parent, root) as folder:
            name = item.source.name
            mode = _lstat(folder, name).st_mode
            _wait_for_readers(root, item.source, mode, "delete")
            if stat.S_ISDIR(mode):
                if mounts := trees.mounts_within(item.source):
                    raise Failed(f"A disk is mounted at '{_rel(root, Path(mounts[0]))}': the "
                                 "file browser does not delete a mounted disk's files "
                                 "(unmount it first).")
                trees.remove_tree(folder, name)
            else:
                os.unlink(name, dir_fd=folder)
        return {"deleted": True}

    def _rename(self, root: Path, item: Planned, touched: list[Path]) -> dict[str, Any]:
        return self._relocate(root, item.source, item.source.with_name(item.argument), touched,
                              "rename")

    def _move(self, root: Path, item: Planned, touched: list[Path]) -> dict[str, Any]:
        if not os.path.lexists(item.source):
            raise Failed(_GONE)
        folder: Path = item.argument
        if not folder.is_dir():
            raise Failed(f"There is no folder '{_rel(root, folder)}' to move it into (nothing, "
                         f"or a file, is there): make it first (the directory action).")
        if item.source.parent == folder:
            raise Failed("It is in that folder already: nothing was moved.")
        if item.source.is_dir() and not item.source.is_symlink() and (
                folder == item.source or folder.is_relative_to(item.source)):
            raise Failed("Cannot move a folder into itself.")
        return self._relocate(root, item.source, folder / item.source.name, touched, "move")

    def _relocate(self, root: Path, source: Path, target: Path, touched: list[Path],
                  action: str) -> dict[str, Any]:
        """``source`` renamed ``target`` (in its folder, or another), with its own sidecars;
        never over what is there. Their new names are checked before anything is renamed:
        one over the system's limit failed after the file itself was renamed, and the
        answer said the rename had failed."""
        with _opened(source.parent, root) as old, _opened(target.parent, root) as new:
            mode = _lstat(old, source.name).st_mode
            # a zip or the player reads it by its name when its turn comes
            _wait_for_readers(root, source, mode, action)
            is_dir = stat.S_ISDIR(mode)
            companions = [] if is_dir else _sidecars(old, source.name, target.name)
            for name, renamed in companions:
                if byte_length(renamed) > NAME_MAX:
                    raise Failed(f"The new name is too long for the sidecar '{name}': it "
                                 f"would be named over {NAME_MAX} bytes.")
            try:
                trees.rename(old, source.name, new, target.name)
            except trees.Exists:
                raise Failed(f"'{_rel(root, target)}' is there already: nothing was "
                             f"{'renamed' if action == 'rename' else 'moved'}. Rename or "
                             f"move that one first, or choose another name.") from None
            touched.append(target)
            moved = 0
            left: list[str] = []
            said: list[str] = []
            for name, renamed in companions:
                try:
                    trees.rename(old, name, new, renamed)
                except (trees.Exists, OSError) as exc:  # the file itself is renamed: go on
                    log.warning("sidecar %s of %s left where it is: %s", name, source, exc)
                    stays = _rel(root, source.parent / name)
                    left.append(stays)
                    said.append(f"'{_rel(root, target.parent / renamed)}' is there already: "
                                f"'{stays}' was left as it is." if isinstance(exc, trees.Exists)
                                else f"'{stays}' could not be renamed ({_said(exc)}): it was "
                                "left as it is.")
                    continue
                touched += [source.parent / name, target.parent / renamed]
                moved += 1
        extra: dict[str, Any] = {"new_path": _rel(root, target)}
        if moved:
            extra["sidecar_count"] = moved
        if left:
            # the file is renamed (ok), but the person must know its sidecars did not follow
            extra.update(sidecars_left=left, warning=" ".join(said))
        return extra

    def _directory(self, root: Path, item: Planned, touched: list[Path]) -> dict[str, Any]:
        current = item.source
        if not current.is_dir():
            raise Failed("path is not a folder (a file, or nothing any more): the new folder "
                         "is made inside the folder path names.")
        created = False
        for part in item.argument:
            with _opened(current, root) as folder:
                try:
                    os.mkdir(part, dir_fd=folder)
                except FileExistsError:
                    current, created = _existing_folder(root, current / part), False
                else:
                    current, created = current / part, True
                    touched.append(current)
        if not created:
            raise Failed(f"The folder '{_rel(root, current)}' is there already: nothing was "
                         f"made.")
        return {"new_dir": _rel(root, current)}


_GONE = ("Nothing is at this path any more (it was moved or deleted meanwhile): refresh "
         "the listing.")


@contextlib.contextmanager
def _opened(folder: Path, root: Path) -> Iterator[int]:
    """``folder`` open (``trees.open_folder``) for the time of a change in it."""
    try:
        fd = trees.open_folder(folder, root)
    except FileNotFoundError:
        raise Failed(_GONE) from None
    try:
        yield fd
    finally:
        os.close(fd)


def _lstat(folder: int, name: str) -> os.stat_result:
    try:
        return os.lstat(name, dir_fd=folder)
    except FileNotFoundError:
        raise Failed(_GONE) from None


def _wait_for_readers(root: Path, path: Path, mode: int, action: str) -> None:
    """Failed, saying so, when a person is reading the file ``path`` is, or one below it."""
    if (held := _held(path, mode)) is not None:
        what = "it" if held == path else f"'{_rel(root, path)}'"
        raise Failed(f"'{_rel(root, held)}' is being sent or played right now (a zip, a "
                     f"download, the player): {action} {what} when that ends.")


def _held(path: Path, mode: int) -> Path | None:
    """The regular file at or below ``path`` (of ``mode``) that a person is reading now (a
    zip being sent holds all of its files: ``in_use``), if any."""
    if not in_use.FILES.anything_held():
        return None
    if stat.S_ISREG(mode):
        return path if in_use.FILES.held(path) else None
    if not stat.S_ISDIR(mode):
        return None
    for folder, _, others in trees.walk(str(path)):
        for name in others:
            found = Path(folder, name)
            if not found.is_symlink() and in_use.FILES.held(found):
                return found
    return None


def _sidecars(folder: int, name: str, new_name: str) -> list[tuple[str, str]]:
    """(name, new name) of each of ``name``'s own sidecars (``kinds.own_sidecars``) in the
    open ``folder``: regular files only, never a link."""
    old_stem, new_stem = kinds.stem(name), kinds.stem(new_name)
    pairs = []
    for other in kinds.own_sidecars(name, os.listdir(folder)):
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISREG(os.lstat(other, dir_fd=folder).st_mode):
                pairs.append((other, new_stem + other[len(old_stem):]))
    return pairs


def _existing_folder(root: Path, path: Path) -> Path:
    """A part of a new folder's path that is there already: the folder it is (a symlink to
    a folder inside is followed)."""
    real = real_path(path)
    real_root = os.path.realpath(root)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise Failed(f"'{_rel(root, path)}' is a link that leads outside the download folder: "
                     f"the file browser makes folders inside it only.")
    if not os.path.isdir(real):
        raise Failed(f"'{_rel(root, path)}' is a file, so no folder can be made in it.")
    return paths.resolve(root, _rel(root, path))  # (404 for a name the API cannot name)


def _rel(root: Path, path: Path) -> str:
    """``path`` as the API names it (files.names), relative to the download folder."""
    real_root = os.path.realpath(root)
    text = os.path.normpath(str(path))
    return api_form(text[len(real_root) + 1:]) if text.startswith(real_root + os.sep) else "/"
