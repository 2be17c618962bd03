"""Files of the download folder named in a URL: the path checked (see files.paths), put in
its normal form (302), found again by its video id after a rename (302), or 404. A name that is
not UTF-8 is named in a URL by its bytes, percent-encoded (files.names), read as sent."""

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
    for name in sorted(n for n in index.names(folder) if tag in n and Path(n).suffix == suffix):
        other = requested.parent / name
        if other.is_file():
            return other
    return None


def redirect(req: falcon.Request, prefix: str, rel: str, suffix: str = "") -> falcon.HTTPFound:
    location = f"{req.context.prefix}{prefix}{quote(os.fsencode(rel))}{suffix}"
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
    problem = runtime.engine.folder_disk.gone
    if problem is None and not runtime.files.root.is_dir():  # before the engine's check saw it
        problem = missing(runtime.files.root)
    if problem is not None:
        raise errors.AppError(problem, errors.UNAVAILABLE)


def as_sent(req: falcon.Request, file: str, prefix: str) -> str:
    """The route's path as its bytes were sent: a file whose name is no UTF-8 (Latin-1 bytes
    an old tool wrote) is named in its URLs by those bytes, percent-encoded (``%E9``), and
    falcon reads them as U+FFFD. Such a name is held as ``os.fsdecode`` holds it (surrogate
    escapes), the form every os call takes; the path is then checked as any other."""
    if "\ufffd" not in file:
        return file
    try:
        raw = req.env["PATH_INFO"].encode("latin-1")  # PEP 3333: bytes tunneled as Latin-1
        raw.decode("utf-8")
    except UnicodeEncodeError:
        return file
    except UnicodeDecodeError:
        sent = os.fsdecode(raw)
        return sent[len(prefix):] if sent.startswith(prefix) else file
    return file  # a name that holds U+FFFD itself


def local_file(req: falcon.Request, runtime: Runtime, requested: str, prefix: str,
               suffix: str = "") -> tuple[Path, str]:
    """The file ``requested`` names (real path, relative path as on the disk), or the
    contract's answers: 302 to the normal form of the path (or to the file that has its id
    now), 404. The route is ``prefix`` + path + ``suffix`` (the player's ``.m3u8``, ``.ts``,
    ``.vtt``, whose path the player reads ``as_sent`` itself)."""
    root = runtime.files.root
    download_folder_there(runtime)
    requested = as_sent(req, requested, prefix)
    normal = paths.canonical(requested)
    if normal != requested:
        raise redirect(req, prefix, normal, suffix)
    path = paths.resolve(root, requested)
    # os.path's tests: a name too long for the file system is no file, not an OSError.
    if not os.path.isfile(path):
        moved = None if os.path.exists(path) else same_id_file(runtime.files.index, path)
        if moved is not None:
            raise redirect(req, prefix, paths.relative(root, moved), suffix)
        raise errors.not_found(f"File '{requested}' does not exist.")
    return path, paths.relative(root, path)
