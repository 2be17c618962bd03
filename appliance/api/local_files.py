"""Files of the download folder named in a URL: the path checked (see files.paths), put in
its normal form (302), found again by its video id after a rename (302), or 404."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

import falcon

from .. import errors
from ..engine.folder_disk import missing
from ..files import paths
from ..files.index import FileIndex
from ..runtime import Runtime

# YTPTube's file ids: "[<11 characters>]" in the name (a YouTube id), found again in a file
# renamed around it.
_VIDEO_ID = re.compile(r"\[(?:youtube-)?([A-Za-z0-9_-]{11})\]")


def same_id_file(index: FileIndex, requested: Path) -> Path | None:
    """A file beside ``requested`` with the same video id and extension (YTPTube's 302),
    found in the index: reading the folder for each missing name cost a listing of the whole
    folder (100,000 files in a flat download folder) per request."""
    match = _VIDEO_ID.search(requested.name)
    if not match:
        return None
    try:
        folder = paths.relative(index.root, requested.parent)
    except ValueError:
        return None
    tag, suffix = f"[{match.group(1)}]", requested.suffix
    # a name that is not valid UTF-8 cannot be sent in the redirect (the index leaves it out)
    for name in sorted(n for n in index.names(folder) if tag in n and Path(n).suffix == suffix):
        other = requested.parent / name
        if other.is_file():
            return other
    return None


def redirect(req: falcon.Request, prefix: str, rel: str, suffix: str = "") -> falcon.HTTPFound:
    location = f"{req.forwarded_prefix}{prefix}{quote(os.fsencode(rel))}{suffix}"
    if req.query_string:
        location += f"?{req.query_string}"
    return falcon.HTTPFound(location)


# The OpenAPI answer of every route that reads the download folder.
FOLDER_GONE = ("The download folder's disk is gone (not mounted any more, or the folder "
               "missing): the error says which.")


def download_folder_there(runtime: Runtime) -> None:
    """503 saying why while the download folder's disk is gone (the engine's periodic check,
    or the folder missing now): a 404 for each file, or an empty listing of the bare mount
    point, would say the files are gone."""
    problem = runtime.engine.folder_disk.problem
    if problem is None and not runtime.files.root.is_dir():  # before the engine's check saw it
        problem = missing(runtime.files.root)
    if problem is not None:
        raise errors.AppError(problem, errors.UNAVAILABLE)


def local_file(req: falcon.Request, runtime: Runtime, requested: str, prefix: str,
               suffix: str = "", undecodable: bool = False) -> tuple[Path, str]:
    """The file ``requested`` names (real path, relative path), or the contract's answers:
    302 to the normal form of the path (or to the file that has its id now), 404. The route
    is ``prefix`` + path + ``suffix`` (the player's ``.m3u8``, ``.ts``, ``.vtt``)."""
    root = runtime.files.root
    download_folder_there(runtime)
    normal = paths.canonical(requested)
    if normal != requested:
        raise redirect(req, prefix, normal, suffix)
    path = paths.resolve(root, requested, undecodable)
    # os.path's tests: a name too long for the file system is no file, not an OSError.
    if not os.path.isfile(path):
        moved = None if os.path.exists(path) else same_id_file(runtime.files.index, path)
        if moved is not None:
            raise redirect(req, prefix, paths.relative(root, moved), suffix)
        raise errors.not_found(f"File '{requested}' does not exist.")
    return path, paths.relative(root, path)
