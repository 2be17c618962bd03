"""What a download process may start during a job: ffmpeg and ffprobe as PATH finds them, the
JavaScript runtime ``js_runtime`` chose (yt-dlp solves YouTube's challenges in it, and the
service names that one to every job), AtomicParsley where it is installed (yt-dlp embeds an
m4a's or mp4's thumbnail with it when mutagen is not installed, which it is not here: the
audio-m4a preset), and the two programs Python's ``platform`` module runs for yt-dlp's
``--verbose`` header (``uname -p``, ``file -b``). Each is compared on its real
path, with symlinks resolved, never on its name: a script planted as ``ffmpeg`` is not ffmpeg.

The option policy (``options.BLOCKED_DESTS``) refuses every option that names a program
(``--exec``, ``--downloader``, ``--ffmpeg-location``, ``--netrc-cmd``, ``--plugin-dirs``,
``--use-postprocessor``); this list is what stands behind it when an option gets past it (as
smuggled ones did). It is checked in the download process's audit hook (``containment``) on
each way Python starts a program -- ``subprocess``, ``os.exec*``, ``os.posix_spawn*``,
``os.system`` -- and a fork, which yt-dlp never makes. A program that does not exist is
refused as exec would refuse it (FileNotFoundError): yt-dlp probes for many that are not
installed (``rtmpdump``, ``AtomicParsley``) and takes the error for "not installed".

ffmpeg and ffprobe read and write files in processes of their own, which the hook does not
see: the files yt-dlp hands them on their command line (``files``) must lie inside the job's
folders, as the hook's writes must. What the hook cannot see: what else an allowed program
does, and a start that bypasses the audited calls (``ctypes``, ``_posixsubprocess``): only
code already running in the process reaches those, and no option of yt-dlp's loads code
(``--plugin-dirs`` is refused).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

from .js_runtime import js_runtime

log = logging.getLogger(__name__)

ALLOWED = ("ffmpeg", "ffprobe", "AtomicParsley", "atomicparsley", "uname", "file")
# Audit events of a program's start, with the position of the program in their arguments
# (None: the shell) and of the environment its PATH comes from.
STARTS: dict[str, tuple[int | None, int | None]] = {
    "subprocess.Popen": (0, 3),
    "os.exec": (0, None),
    "os.posix_spawn": (0, None),
    "os.system": (None, None),
}
FORKS = frozenset({"os.fork", "os.forkpty"})
SHELL = "/bin/sh"
# The programs that take files on their command line, and the options whose value is one.
# yt-dlp names every file it hands them "file:PATH" (FFmpegPostProcessor
# ._ffmpeg_filename_argument); the value of -i is the site's URL when ffmpeg downloads (a
# network one: ffmpeg's protocols that wrap another, "crypto+file://", "concat:", "subfile:",
# read files), or its standard input ("-", "pipe:").
FILE_TAKERS = frozenset({"ffmpeg", "ffprobe"})
FILE_OPTIONS = frozenset({"-i", "-attach"})
NOT_A_FILE = re.compile(r"-|pipe:\d*|(?:https?|rtmp[a-z]*|rtsp|mms[a-z]?|s?ftp|srt|tcp|tls|udp)"
                        r"://.*", re.DOTALL)


class StartRefused(PermissionError):
    """The audit hook refused to start a program (an OSError, so that yt-dlp's probes read it
    as a program that is not there; the job still fails, ``ContainedYoutubeDL``)."""


@functools.cache
def allowed() -> dict[str, str]:
    """The real path of each program a download may start, and its name (found once per
    process, before its first job: the JavaScript runtime is asked its version)."""
    runtime = js_runtime()
    found: dict[str, str] = {}
    for name, path in [(name, shutil.which(name)) for name in ALLOWED] + (
            [(runtime["name"], runtime["path"])] if runtime else []):
        if path:
            found.setdefault(os.path.realpath(path), name)
    return found


def refusal(program: str) -> str:
    """What the item says when ``program`` was not started."""
    names = list(dict.fromkeys(allowed().values()))
    listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
    return f"{program}: only {listed or 'nothing'} may run in a download."


def _paths(event: str, program: str, cwd: str, env: Any) -> list[str]:
    """Every file the start could run: a name without a ``/`` is looked for on PATH (the
    environment's the program gets, as subprocess does), and, where the call does not search
    PATH (``os.execv``, ``os.posix_spawn``), in the working directory."""
    if "/" in program:
        return [os.path.join(cwd, program)]
    paths = [] if event == "subprocess.Popen" else [os.path.join(cwd, program)]
    if event != "os.exec":
        found = shutil.which(program, path=os.pathsep.join(os.get_exec_path(env)))
        paths += [found] if found else []
    return [path for path in paths if os.path.isfile(path)]


def _cwd(event: str, args: tuple[Any, ...]) -> str:
    return os.fsdecode(args[2]) if event == "subprocess.Popen" and args[2] else os.getcwd()


def check(event: str, args: tuple[Any, ...], refused: list[str]) -> str:
    """The name of the allowed program ``args`` start; StartRefused (its text noted in
    ``refused``) for any other, FileNotFoundError for one that does not exist."""
    if event in FORKS:
        text = refusal("Refused to fork the download process")
    else:
        position, env_position = STARTS[event]
        program = SHELL if position is None else os.fsdecode(args[position])
        env = args[env_position] if env_position is not None else None
        paths = _paths(event, program, _cwd(event, args), env)
        if not paths:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        names = {allowed().get(os.path.realpath(path)) for path in paths}
        if len(names) == 1 and None not in names:
            return names.pop()
        text = refusal(f"Refused to start program {program!r}")
    refused.append(text)
    log.warning("%s", text)
    raise StartRefused(errno.EPERM, text)


def files(name: str, event: str, args: tuple[Any, ...]) -> Iterator[str]:
    """The files named on the command line of program ``name`` (as ``check`` named it) when
    it takes files: each ``file:PATH`` (the path ffmpeg opens), and each value of ``-i`` and
    ``-attach`` that is no network URL nor a pipe (another protocol of ffmpeg's,
    ``concat:A|B``, is taken for a file name: never one inside)."""
    if name not in FILE_TAKERS:
        return
    argv = [os.fsdecode(arg) for arg in args[1][1:]]
    for before, arg in zip(["", *argv], argv, strict=False):
        if arg.startswith("file:"):
            # opened as it is: "file://etc/passwd" is //etc/passwd, the root's, not etc/passwd
            # in the working directory
            arg = arg.removeprefix("file:")
        elif before not in FILE_OPTIONS or NOT_A_FILE.fullmatch(arg):
            continue
        yield os.path.join(_cwd(event, args), arg)
