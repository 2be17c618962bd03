"""Where a download may write: inside its download folder, or its temp folder for partial files.

Decided on the *final* path, in the process that writes, before a file is opened: after yt-dlp
has rendered the output template with the site's metadata. The template's text alone says
little: metadata (an uploader called ``..``), defaults (``%(x|..)s``) and the N/A placeholder
become path components only when it is rendered.

Two layers, each enough for what it covers:

1. ``ContainedYoutubeDL``: templates are names, never expanded (``$HOME``, ``~``); a rendered
   component that is ``.`` or ``..`` becomes ``_`` (as yt-dlp names an empty field), one
   longer than a name may be is cut and one that is not valid text mended (``fit_name``);
   output to stdout (``-``) is refused; the path, with symlinks resolved, must lie inside
   the download or temp folder (not yt-dlp's cache, where yt-dlp alone writes), or the job
   stops with ``OutsideDownloadFolder`` before anything is opened; so does a post-processor
   whose file (``filepath``, which ``--parse-metadata`` can rename) lies outside.
2. ``guard_writes``: an audit hook (PEP 578) that checks, during a job, every open for writing,
   rename, removal, link, directory, time and attribute change the process makes. It is the
   backstop for what does not pass through ``prepare_filename`` (post-processors, a future
   yt-dlp); what it refuses fails the job even if yt-dlp swallowed the error. It also
   refuses to start any program but those ``programs`` allows, and to hand ffmpeg or ffprobe
   a file outside (they read and write in processes of their own, which it does not see).

Both run in the download processes (``engine.child``) and the console (``engine.console``),
never in the service itself: an audit hook cannot be removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import yt_dlp
from yt_dlp.utils import OUTTMPL_TYPES, DownloadError

from ..path_limits import NAME_MAX, byte_length, cut_to_bytes, real_path
from ..url_secrets import with_urls_masked
from . import programs
from .command_line_secrets import NONE, Secrets
from .credentials import without_credentials

# Components that would name the folder itself or its parent once joined.
_DOT_NAMES = frozenset({".", ".."})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
# Audit events that change the file system, with the positions of their path arguments and of
# the dir_fd each path is relative to (None: absolute or relative to the working directory).
_PATH_EVENTS: dict[str, tuple[tuple[int, int | None], ...]] = {
    "os.rename": ((0, 2), (1, 3)),  # os.replace too
    "os.remove": ((0, 1),),
    "os.rmdir": ((0, 1),),
    "os.mkdir": ((0, 2),),
    "os.symlink": ((1, 2),),
    "os.link": ((0, 2), (1, 3)),
    "os.truncate": ((0, None),),
    "os.chmod": ((0, 2),),
    "os.chown": ((0, 3),),
    "os.utime": ((0, 3),),
    "os.setxattr": ((0, None),),
    "os.removexattr": ((0, None),),
    "shutil.copyfile": ((1, None),),
    "shutil.copytree": ((1, None),),
    "shutil.rmtree": ((0, 1),),
}
_ALWAYS_WRITABLE = frozenset({os.devnull})
# A code point no UTF-8 text holds: a lone surrogate, from a site's JSON ("\\udce9") or a byte
# of its text that was not UTF-8. A file name with one could not be opened (or was written in
# bytes no other program reads as text), and no record that holds one could be stored.
_SURROGATES = re.compile("[\ud800-\udfff]")
# Bytes of a file name before its extension. Past it the name is cut: what follows must still
# fit in a name -- the extension (".info.json"), and what yt-dlp adds while it works: a
# format's ".f251-drc", ".part", a fragment's "-Frag1234", ".temp", a subtitle's ".en-US".
STEM_MAX = NAME_MAX - 64
# The longest extension kept whole when a name is cut, in bytes (the site names it; "info.json"
# is 9): the stem's cut and it must leave room for what yt-dlp adds.
EXT_MAX = 16


class OutsideDownloadFolder(DownloadError):
    """A file of the job would land outside its download or temp folder."""


class ProgramRefused(DownloadError):
    """The job tried to start a program a download may not start (``programs``)."""


class WriteRefused(PermissionError):
    """The audit hook refused a write outside the job's folders (an OSError, so yt-dlp's own
    error handling reports it as a failed write)."""


def _real(path: str) -> str:
    """The final path (a chain of links the system would not follow: OSError, ELOOP)."""
    return real_path(path)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _under(real: str, roots: tuple[str, ...]) -> bool:
    return any(_inside(real, root) for root in roots)


def _reals(*folders: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_real(folder) for folder in folders if folder))


class Containment:
    """The folders one job may write in: the download folder (``root``; its own folder
    ``home`` when none is given) and its temp folder hold its files; yt-dlp may also write
    its own cache (``extra``), which is never where a file of the job is named. ``refused``
    keeps the writes the audit hook stopped, ``refused_programs`` the starts. ``secrets``:
    the person's, which no program's command line may name (``command_line_secrets``)."""

    def __init__(self, home: str, temp: str, *, root: str = "",
                 extra: tuple[str, ...] = (), secrets: Secrets = NONE) -> None:
        self.home, self.temp, self.secrets = home, temp, secrets
        self.folders = _reals(root or home, temp)
        self.roots = _reals(*self.folders, *extra)
        self.refused: list[str] = []
        self.refused_programs: list[str] = []

    def allows(self, path: str) -> bool:
        """Whether the process may write ``path`` (the audit hook's question); not a path
        whose links cannot be followed (it leads nowhere the job may write)."""
        try:
            real = _real(path)
        except OSError:
            return False
        return real in _ALWAYS_WRITABLE or _under(real, self.roots)

    def holds(self, path: str) -> bool:
        """Whether ``path`` may be a file of the job: inside its download or temp folder."""
        try:
            return _under(_real(path), self.folders)
        except OSError:
            return False

    def name_safely(self, path: str, ext: str = "") -> str:
        """``path`` with every component after its root a name it can have: ``.`` and ``..``
        replaced by ``_``, one too long cut (``fit_name``; ``ext``: the file's extension)."""
        for root in sorted((self.home, self.temp), key=len, reverse=True):
            prefix = root.rstrip("/") + "/"
            if root and path.startswith(prefix):
                *folders, name = path[len(prefix):].split("/")
                return prefix + "/".join([*(fit_name(part, NAME_MAX) for part in folders),
                                          fit_name(name, STEM_MAX, ext)])
        return path

    def check(self, path: str, what: str, ext: str = "") -> str:
        if path == "-":
            raise OutsideDownloadFolder(
                f"Refused: the {what} output is standard output ('-'); a download must be "
                f"written to a file inside the download folder.")
        path = self.name_safely(path, ext)
        if not self.holds(path):
            raise OutsideDownloadFolder(
                f"Refused: the {what} file would be written outside the download folder: "
                f"{path!r}. Output templates (and the site's metadata in them) must stay "
                f"inside the download folder.")
        return path


def valid_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD, as a decoder replaces what it
    cannot read."""
    return _SURROGATES.sub("\ufffd", text)


def fit_name(name: str, limit: int, ext: str = "") -> str:
    """``name`` as one path component: at most ``limit`` bytes before its ``.ext``.

    Site metadata makes names of any length (a title of 100 CJK characters is 300 bytes), and
    yt-dlp fails a download on a name the file system refuses (ENAMETOOLONG). A cut name keeps
    its start. The stem is cut the same whatever the extension, so that a media file and its
    sidecars (``.info.json``, ``.en.vtt``) keep one stem. A name that is, or is cut to,
    ``.`` or ``..`` (``..`` and 300 spaces, from a site) becomes ``_``; a lone surrogate
    U+FFFD (``valid_text``). An extension longer than EXT_MAX bytes is cut as a part of the
    name: sixteen emoji (64 bytes) after a stem of ``limit`` bytes made a name one byte over
    the file system's, and yt-dlp's ``.part`` after it five more."""
    name, ext = valid_text(name), valid_text(ext)
    stem = name.removesuffix(f".{ext}") if 0 < byte_length(ext) <= EXT_MAX else name
    if cut_to_bytes(stem, limit) != stem:
        name = (cut_to_bytes(stem, limit).rstrip() or "_") + name[len(stem):]
    return "_" if name in _DOT_NAMES else name


_active: Containment | None = None


@contextlib.contextmanager
def contained(containment: Containment) -> Iterator[Containment]:
    """Make ``containment`` the one the audit hook enforces for the duration of a job."""
    global _active
    _active = containment
    try:
        yield containment
    finally:
        _active = None


def _absolute(path: Any, dir_fd: Any) -> str | None:
    if isinstance(path, int) or path is None:
        return None  # an open file descriptor: its path was checked when it was opened
    path = os.fsdecode(os.fspath(path))
    if isinstance(dir_fd, int) and not os.path.isabs(path):
        with contextlib.suppress(OSError):
            return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
    return os.path.abspath(path)


def _written_paths(event: str, args: tuple[Any, ...]) -> Iterator[str]:
    if event == "open":
        path, _mode, flags = args
        writes = isinstance(flags, int) and flags & _WRITE_FLAGS
        if writes and (absolute := _absolute(path, None)) is not None:
            yield absolute
        return
    for position, fd_position in _PATH_EVENTS[event]:
        dir_fd = args[fd_position] if fd_position is not None else None
        if (absolute := _absolute(args[position], dir_fd)) is not None:
            yield absolute


def _audit(event: str, args: tuple[Any, ...]) -> None:
    containment = _active
    if containment is None:
        return
    if event in programs.STARTS or event in programs.FORKS:
        name = programs.check(event, args, containment.refused_programs)
        argv = args[1] if programs.STARTS[event][0] is not None else args[:1]
        if told := containment.secrets.refusal(name, argv):
            containment.refused_programs.append(told)
            raise programs.StartRefused(errno.EPERM, told)
        for path in programs.files(name, event, args):
            if not containment.holds(path):  # ffmpeg's reads and writes, out of the hook's sight
                containment.refused.append(path)
                raise WriteRefused(f"Refused: {name} was to read or write {path!r}, outside "
                                   f"the download folder.")
        return
    if event != "open" and event not in _PATH_EVENTS:
        return
    for path in _written_paths(event, args):
        if not containment.allows(path):
            containment.refused.append(path)
            raise WriteRefused(
                f"Refused: {path!r} is outside the download folder ({event}).")


def guard_writes() -> None:
    """Install the audit hook in this process (once; it cannot be removed), with the programs
    it allows found before any job (the zygote's, for every process it forks)."""
    programs.allowed()
    if not getattr(guard_writes, "installed", False):
        sys.addaudithook(_audit)
        guard_writes.installed = True  # type: ignore[attr-defined]


def cache_dir(params: dict[str, Any]) -> str:
    """yt-dlp's cache folder for these params ('' when caching is off)."""
    with contextlib.suppress(Exception):  # yt-dlp internals: no cache is the safe answer
        return yt_dlp.cache.Cache(_Params(params))._get_root_dir() if params.get(
            "cachedir", True) is not False else ""
    return ""


class _Params:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params


class ContainedYoutubeDL(yt_dlp.YoutubeDL):
    """A YoutubeDL whose every output path is checked once rendered (layer 1 above).

    ``containment`` is set by the job before any download starts."""

    containment: Containment | None = None

    @staticmethod
    def sanitize_info(info_dict: Any, remove_private_keys: bool = False) -> Any:
        """What yt-dlp writes of an item (``.info.json``, ``-j``): without the person's
        credentials for the site (``credentials``) and the secrets of its URLs."""
        return with_urls_masked(without_credentials(
            yt_dlp.YoutubeDL.sanitize_info(info_dict, remove_private_keys)))

    @staticmethod
    def _outtmpl_expandpath(outtmpl: str) -> str:
        # yt-dlp expands $VARIABLES and ~ in templates: the paths are the appliance's own
        # (home, temp), so a template is only ever names.
        return outtmpl

    def prepare_filename(self, info_dict: dict[str, Any], dir_type: str = "", *,
                         outtmpl: str | None = None, warn: bool = False) -> str:
        filename = super().prepare_filename(info_dict, dir_type, outtmpl=outtmpl, warn=warn)
        if not filename or self.containment is None:
            return filename
        ext = OUTTMPL_TYPES.get(dir_type) or str(info_dict.get("ext") or "")
        return self.containment.check(filename, dir_type or "media", ext)

    def process_ie_result(self, *args: Any, **kwargs: Any) -> Any:
        # Where every job's work runs (extract_info's too). yt-dlp reads a refused start as a
        # program that is not there and may go on without it (a --downloader falls back to
        # its own): the refusal is the job's end, and its reason.
        try:
            return super().process_ie_result(*args, **kwargs)
        finally:
            if self.containment is not None and self.containment.refused_programs:
                raise ProgramRefused(self.containment.refused_programs[0])

    def run_pp(self, pp: Any, infodict: dict[str, Any]) -> Any:
        # A post-processor works on the file its info names, mostly in ffmpeg, a process the
        # audit hook does not see; a metadata post-processor (--parse-metadata,
        # --replace-in-metadata) may make that name any path: ffmpeg read a file outside and
        # wrote "<name>.temp.mp4" and a remux's "<name>.mkv" there, and after the last one
        # the item named that file as its own. So it is checked before and after each.
        self._check_pp_file(pp, infodict)
        infodict = super().run_pp(pp, infodict)
        self._check_pp_file(pp, infodict)
        return infodict

    def _check_pp_file(self, pp: Any, infodict: dict[str, Any]) -> None:
        filepath = infodict.get("filepath")
        if self.containment is not None and filepath and not self.containment.holds(
                str(filepath)):
            self.containment.refused.append(str(filepath))
            name = getattr(pp, "PP_NAME", "") or type(pp).__name__
            raise OutsideDownloadFolder(
                f"Refused: the {name} post-processor's file is outside the download folder: "
                f"{str(filepath)!r}.")
