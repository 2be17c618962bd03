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
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import errors, kinds
from . import paths
from .index import FileIndex

log = logging.getLogger(__name__)

ACTIONS = ("rename", "delete", "move", "directory")
MAX_ACTIONS = 1000
# The field each action needs besides ``path``.
_NEEDS = {"rename": "new_name", "move": "new_path", "directory": "new_dir"}


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
        raise errors.invalid("Cannot operate on the download folder itself.")
    folder = paths.resolve(root, "/".join(parts[:-1]))
    entry = folder / parts[-1]
    if entry.is_symlink():
        real_root = os.path.realpath(root)
        target = os.path.realpath(entry)
        if target != real_root and not target.startswith(real_root + os.sep):
            raise paths.outside()
    return entry


def plan(root: Path, body: Any) -> list[Planned]:
    if not isinstance(body, list) or not body:
        raise errors.invalid("Invalid parameters expecting list of dicts.")
    if len(body) > MAX_ACTIONS:
        raise errors.invalid(f"At most {MAX_ACTIONS} actions at once.")
    return [plan_one(root, params) for params in body]


def plan_one(root: Path, params: Any) -> Planned:
    """One action checked on the folder as it is now; 400/403 when refused."""
    if not isinstance(params, dict):
        raise errors.invalid("Invalid parameters expecting list of dicts.")
    action = str(params.get("action") or "").lower()
    if action not in ACTIONS:
        raise errors.invalid(f"Invalid action '{params.get('action')}'. Must be one of "
                             f"{', '.join(ACTIONS)}.")
    requested = params.get("path")
    if not isinstance(requested, str) or not requested:
        raise errors.invalid(f"path is required for the {action} action.")
    need = _NEEDS.get(action)
    if need and not params.get(need):
        raise errors.invalid(f"{need} is required for the {action} action.")
    if action == "directory":
        return Planned(action, params, paths.resolve(root, requested),
                       paths.check_subpath(params[need], need))
    if action == "rename":
        return Planned(action, params, entry_path(root, requested),
                       paths.check_name(params[need], need))
    if action == "move":
        if not isinstance(params[need], str):
            raise errors.invalid(f"{need} must be a string.")
        return Planned(action, params, entry_path(root, requested),
                       paths.resolve(root, params[need]))
    return Planned(action, params, entry_path(root, requested))


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

    @staticmethod
    def _exists(path: Path) -> None:
        if not os.path.lexists(path):
            raise Failed("Path does not exist.")

    def _delete(self, root: Path, item: Planned, touched: list[Path]) -> dict[str, Any]:
        self._exists(item.source)
        if item.source.is_dir() and not item.source.is_symlink():
            shutil.rmtree(item.source)
        else:
            item.source.unlink()
        return {"deleted": True}

    def _rename(self, root: Path, item: Planned, touched: list[Path]) -> dict[str, Any]:
        self._exists(item.source)
        target = item.source.with_name(item.argument)
        return self._relocate(root, item.source, target, touched)

    def _move(self, root: Path, item: Planned, touched: list[Path]) -> dict[str, Any]:
        self._exists(item.source)
        folder: Path = item.argument
        if not folder.is_dir():
            raise Failed("Destination path is invalid.")
        if item.source.parent == folder:
            raise Failed("Source and destination are the same.")
        if item.source.is_dir() and not item.source.is_symlink() and (
                folder == item.source or folder.is_relative_to(item.source)):
            raise Failed("Cannot move a folder into itself.")
        return self._relocate(root, item.source, folder / item.source.name, touched)

    def _relocate(self, root: Path, source: Path, target: Path, touched: list[Path]
                  ) -> dict[str, Any]:
        if os.path.lexists(target):
            raise Failed("Destination already exists.")
        companions = [] if source.is_dir() else self._sidecars(source, target)
        os.rename(source, target)
        touched.append(target)
        moved = 0
        for old, new in companions:
            if not os.path.lexists(new):
                os.rename(old, new)
                touched += [old, new]
                moved += 1
        extra: dict[str, Any] = {"new_path": _rel(root, target)}
        if moved:
            extra["sidecar_count"] = moved
        return extra

    @staticmethod
    def _sidecars(source: Path, target: Path) -> list[tuple[Path, Path]]:
        """(old, new) for each of ``source``'s own sidecars (``kinds.own_sidecars``)."""
        old_stem = kinds.stem(source.name)
        new_stem = kinds.stem(target.name)
        pairs = []
        for name in kinds.own_sidecars(source.name, os.listdir(source.parent)):
            sibling = source.parent / name
            if sibling.is_file() and not sibling.is_symlink():
                pairs.append((sibling, target.parent / (new_stem + name[len(old_stem):])))
        return pairs

    def _directory(self, root: Path, item: Planned, touched: list[Path]) -> dict[str, Any]:
        current = item.source
        if not current.is_dir():
            raise Failed("Path is not a directory.")
        real_root = os.path.realpath(root)
        created = False
        for part in item.argument:
            following = current / part
            if os.path.lexists(following):
                real = os.path.realpath(following)
                if real != real_root and not real.startswith(real_root + os.sep):
                    raise Failed("Destination outside root.")
                if not os.path.isdir(real):
                    raise Failed("A part of the new path is a file.")
                current = Path(real)
                created = False
            else:
                following.mkdir()
                touched.append(following)
                current, created = following, True
        if not created:
            raise Failed("Directory already exists.")
        return {"new_dir": _rel(root, current)}


def _rel(root: Path, path: Path) -> str:
    real_root = os.path.realpath(root)
    text = os.path.normpath(str(path))
    return text[len(real_root) + 1:] if text.startswith(real_root + os.sep) else "/"
