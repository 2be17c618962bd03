"""yt-dlp, tuned for a process that lives for many jobs: work it would repeat on every job is
done once at warm-up, and work nobody sees is not done at all.

Each change names what it saves, measured here. Those that reach into yt-dlp's internals are
skipped quietly if the internals move: the job still runs, only slower.
"""

from __future__ import annotations

import contextlib
import functools
import optparse
import os
import re
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import yt_dlp
from yt_dlp.extractor import get_info_extractor
from yt_dlp.postprocessor.metadataparser import MetadataParserPP
from yt_dlp.utils import DownloadError

from .. import bytecode
from . import url_matching
from .containment import ContainedYoutubeDL, Containment
from .ffmpeg_words import hear_ffmpeg
from .file_moves import move_files_whole
from .filter_bound import bounded_filters
from .options import PATH_FIELDS, failure_text

# yt-dlp formats its console progress line (through its output-template engine, ~0.3 ms)
# on every block it reads, even when quiet; nobody sees it here. Its --progress-delta gate
# lets one through per download: about a tenth of the child's CPU on a fast link.
CONSOLE_PROGRESS_DELTA = 1e9
# yt-dlp's options that print an item's fields (--get-title, --get-url, -j, ...).
PRINTING_PARAMS = ("forcetitle", "forceid", "forceurl", "forcethumbnail", "forcedescription",
                   "forcefilename", "forceformat", "forceduration", "forcejson")
# A download's file reaches the kernel in writes of at most WRITE_SLICE, and is handed to
# the disk every WRITEBACK_EVERY bytes (see StreamingWriter).
WRITE_SLICE = 256 * 1024
# yt-dlp's compatibility options that turn off its own checks of what a site names.
UNSAFE_COMPAT_OPTIONS = frozenset({"allow-unsafe-ext", "allow-unsafe-exec-expansion"})
WRITEBACK_EVERY = 16 * 2**20
# In the bytecode folder: what url_matching read of yt-dlp's patterns (``url_readings_file``).
URL_READINGS = "url-matching.json"


class YoutubeDL(ContainedYoutubeDL):
    # Holds yt-dlp's default extractors, in its order (``new_ydl``): url_matching's answer
    # is its own.
    default_extractors = False
    # Why yt-dlp passed the item over without downloading it (--match-filters,
    # --reject-title, --date, …), as it says it on a console nobody reads here.
    passed_over: str | None = None

    def _match_entry(self, info_dict: Any, incomplete: bool = False,
                     silent: bool = False) -> str | None:
        """Why yt-dlp passes the item over, kept; a person's filters bounded in time
        (``filter_bound``)."""
        with bounded_filters():
            reason = super()._match_entry(info_dict, incomplete, silent)
        if reason is not None:
            self.passed_over = reason
        return reason

    def _forceprint(self, key: str, info_dict: Any, *args: Any, **kwargs: Any) -> Any:
        """yt-dlp renders the formats, thumbnails and subtitles tables at each of the ~7
        stages of a download, to fill in --print templates, printed or not: 24 ms with the
        one format of a plain file, far more with a site's hundred. Only when something is
        to be printed."""
        if info_dict is None or self.params.get("forceprint", {}).get(key) \
                or self.params.get("print_to_file", {}).get(key) \
                or any(self.params.get(name) for name in PRINTING_PARAMS):
            return super()._forceprint(key, info_dict, *args, **kwargs)
        return info_dict


# The default extractors by key, in yt-dlp's order (a catch-all one, which a YoutubeDL needs
# an instance of its own of, by its class), and those catch-all ones.
_EXTRACTORS: dict[str, Any] = {}
_OWN_INSTANCES: list[type] = []


class ExtractorTable(MutableMapping[str, Any]):
    """A YoutubeDL's extractors by key (its ``_ies``): the process's table of yt-dlp's
    default ones, read, never copied, and what this YoutubeDL put in an entry's place (the
    instance it made of an extractor), after them, or took out.

    A copy of the ~1,800 entries wrote each extractor class's reference count: in a process
    forked from the zygote, ~900 pages copied from it (3.5 MB of its own memory, ~8 ms) on its
    first job. A whole mapping, not just what yt-dlp uses of it today, so that a yt-dlp
    installed later that removes or updates entries still runs its jobs."""

    __slots__ = ("_hidden", "_own", "_shared")

    def __init__(self, shared: dict[str, Any]) -> None:
        self._shared = shared
        self._own: dict[str, Any] = {}
        self._hidden: set[str] = set()  # shared ones taken out

    def __getitem__(self, key: str) -> Any:
        own = self._own.get(key)
        if own is not None:
            return own
        if key in self._hidden:
            raise KeyError(key)
        return self._shared[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._own[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._own.pop(key, None)
        if key in self._shared:
            self._hidden.add(key)

    def __contains__(self, key: object) -> bool:
        return key in self._own or (key in self._shared and key not in self._hidden)

    def __iter__(self) -> Iterator[str]:
        yield from (key for key in self._shared if key in self._own or key not in self._hidden)
        yield from (key for key in self._own if key not in self._shared)

    def __len__(self) -> int:
        hidden = sum(key not in self._own for key in self._hidden)
        return len(self._shared) - hidden + sum(key not in self._shared for key in self._own)


def new_ydl(params: dict[str, Any], containment: Containment) -> YoutubeDL:
    """A YoutubeDL with the default extractors, in about 0.2 ms instead of about 50, whose
    every output path is checked against ``containment``.

    YoutubeDL orders its ~1,800 extractors with a quadratic helper on every construction;
    the order never changes within a process, so it is taken once (at warm-up) and shared
    (``ExtractorTable``). A job that restricts the extractors (--use-extractors) gets
    yt-dlp's own loading.
    """
    if not _EXTRACTORS or params.get("allowed_extractors", ["default"]) != ["default"]:
        ydl = YoutubeDL(params)
        ydl.containment = containment
        return ydl
    ydl = YoutubeDL(params, auto_init=False)
    ydl.containment = containment
    ydl._ies = ExtractorTable(_EXTRACTORS)
    for extractor in _OWN_INSTANCES:  # its key is there already: it keeps its place
        ydl.add_info_extractor(extractor())
    ydl.default_extractors = True
    return ydl


def extract_info(ydl: YoutubeDL, url: str, *, download: bool) -> Any:
    """``ydl.extract_info(url)``; with the default extractors, told which one takes the URL
    (``url_matching``: the extractor yt-dlp's own search would find, in a third of the
    time)."""
    key = url_matching.extractor_key(url) if ydl.default_extractors else None
    return ydl.extract_info(url, download=download, ie_key=key)


@functools.lru_cache(maxsize=32)
def parsed_options(args: tuple[str, ...]) -> dict[str, Any]:
    """yt-dlp's params for a command line; callers copy before changing them. yt-dlp builds
    its 325-option parser on every call (~3 ms), and an item's extraction and its download,
    like most items of a queue, pass the same arguments. DownloadError (the job's error) with
    yt-dlp's reason when it refuses them: the values' meaning (``--retries lots``) is checked
    here, not where the service split them (``options.parse_cli``)."""
    try:
        params = yt_dlp.parse_options(list(args)).ydl_opts
    except (optparse.OptParseError, ValueError, TypeError) as exc:
        raise DownloadError(failure_text(exc)) from None
    if unsafe := sorted(set(params.get("compat_opts") or ()) & UNSAFE_COMPAT_OPTIONS):
        raise DownloadError(
            f"--compat-options {', '.join(unsafe)} is refused here: it lets a site choose "
            f"what the download folder's checks rely on (a file's extension, a command's "
            f"expansion). 'all' includes it: write "
            f"'all,{','.join('-' + name for name in unsafe)}'.")
    if kept := sorted({field for field in metadata_targets(params)
                       if field in PATH_FIELDS or field.startswith("_")}):
        raise DownloadError(
            f"--parse-metadata and --replace-in-metadata may not set {', '.join(kept)}: "
            f"yt-dlp keeps the paths of the download's files there, and the item would name "
            f"a file its download did not write (another item's, or one outside the download "
            f"folder). Set another field.")
    return params


def metadata_targets(params: dict[str, Any]) -> Iterator[str]:
    """The fields of an item's info that the params' --parse-metadata (the names of its
    expression's groups) and --replace-in-metadata set."""
    for processor in params.get("postprocessors") or ():
        if processor.get("key") != "MetadataParser":
            continue
        for action, *args in processor.get("actions") or ():
            if action is MetadataParserPP.Actions.REPLACE:
                yield args[0]
            elif action is MetadataParserPP.Actions.INTERPRET:
                with contextlib.suppress(re.error):  # yt-dlp's own error says it
                    yield from re.compile(MetadataParserPP.format_to_regex(args[1])).groupindex


def share_ssl_contexts() -> None:
    """Build each TLS context once per process, not once per job: loading the CA bundle
    costs ~20 ms, and every YoutubeDL would do it again for the same settings."""
    try:
        from yt_dlp.networking import common
    except ImportError:
        return
    make = getattr(common, "make_ssl_context", None)
    if make is not None and not hasattr(make, "cache_info"):
        common.make_ssl_context = functools.lru_cache(maxsize=8)(make)


class StreamingWriter:
    """A download's file, streamed to disk as it arrives rather than left to the page cache.

    - yt-dlp writes each block it reads, up to 4 MiB, in one call. On a recent kernel (6.18
      here; ext4 with large page-cache folios) such a write now and then stalls while memory
      is compacted for a large folio; 256 KiB writes did not.
    - yt-dlp opens the file with a truncate, and on ext4 a file truncated to zero is flushed
      whole when it is closed (``auto_da_alloc``): 160 ms per 480 MB here, far longer on an
      SD card, spent between the last byte and "finished".
    - So every WRITEBACK_EVERY bytes the written range is handed to the disk
      (``posix_fadvise(DONTNEED)`` starts its writeback, as PostgreSQL does in
      ``pg_flush_data``): the close has at most that much left to flush, dirty pages do not
      pile up on a small box, and a file announced as finished is already on its way to disk.

    Measured in process, 480 MB from the test origin on loopback, 6 runs each: yt-dlp as is
    took 0.29-1.26 s (0.42-1.27 s until ``sync`` returned); through this writer 0.27-0.34 s,
    and ``sync`` then found almost nothing left to write.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        try:  # a resumed download appends after what is there
            self._written = self._handed = stream.tell()
        except (OSError, AttributeError, ValueError):
            self._written = self._handed = 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        for start in range(0, len(view), WRITE_SLICE):
            self._stream.write(view[start:start + WRITE_SLICE])
        self._written += len(view)
        if self._written - self._handed >= WRITEBACK_EVERY:
            self._hand_to_disk()
        return len(view)

    def _hand_to_disk(self) -> None:
        self._stream.flush()
        with contextlib.suppress(OSError, AttributeError):  # not a regular file, not Linux
            os.posix_fadvise(self._stream.fileno(), self._handed, self._written - self._handed,
                             os.POSIX_FADV_DONTNEED)
        self._handed = self._written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def stream_http_downloads_to_disk() -> None:
    """Hand the file of each plain HTTP download to yt-dlp as a StreamingWriter."""
    try:
        from yt_dlp.downloader.http import HttpFD
    except ImportError:
        return
    open_file = HttpFD.sanitize_open
    if getattr(open_file, "streaming", False):
        return

    def sanitize_open(self: Any, filename: str, open_mode: str) -> tuple[Any, str]:
        stream, filename = open_file(self, filename, open_mode)
        return StreamingWriter(stream), filename

    sanitize_open.streaming = True  # type: ignore[attr-defined]
    HttpFD.sanitize_open = sanitize_open


def load_generic_extractor() -> None:
    """Import what a first job imports: the generic extractor's module (which imports YouTube's
    too) is loaded on first use, ~0.3 s here -- in every freshly forked process, unless the
    zygote loaded it before forking."""
    with contextlib.suppress(Exception):  # yt-dlp internals: a cold first job is the fallback
        getattr(get_info_extractor("Generic"), "real_class", None)


# A direct file, as the generic extractor describes one: no network is asked for it.
_REHEARSAL = {"id": "warm-up", "title": "warm-up", "url": "http://127.0.0.1:9/warm-up.mp4",
              "ext": "mp4", "extractor": "generic", "extractor_key": "Generic",
              "webpage_url": "http://127.0.0.1:9/warm-up.mp4"}


def rehearse(ydl: yt_dlp.YoutubeDL) -> None:
    """Choose formats and render a file name for a made-up item, without downloading: what a
    first job would do once in each process -- probe ffmpeg's version (~0.1 s, a subprocess)
    and compile some 40 regular expressions (~50 ms)."""
    with contextlib.suppress(Exception):  # a cold first job is the fallback
        ydl.process_ie_result(dict(_REHEARSAL), download=False)


def url_readings_file() -> Path | None:
    """Where a zygote keeps what it read of yt-dlp's URL patterns for the next one: the
    virtual environment's bytecode folder, which only the service (or root) may write
    (``appliance.bytecode``); None without one."""
    folder = bytecode.cache_folder(make=False)
    return folder / URL_READINGS if folder is not None else None


def warm_up() -> None:
    """What a process does once, before it says it is ready."""
    load_generic_extractor()
    share_ssl_contexts()
    stream_http_downloads_to_disk()
    hear_ffmpeg()
    move_files_whole()
    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True, "simulate": True}) as probe:
        _EXTRACTORS.clear()
        _OWN_INSTANCES.clear()
        for key, extractor in probe._ies.items():
            if isinstance(extractor, type):
                _EXTRACTORS[key] = extractor
            else:  # the catch-all instance ("end") belongs to one YoutubeDL
                _EXTRACTORS[key] = type(extractor)
                _OWN_INSTANCES.append(type(extractor))
        url_matching.prepare(_EXTRACTORS.values(), remembered=url_readings_file())
        # Compiles what every URL is tried against, once for all the zygote's processes: with
        # a readings file, only what is left (patterns that asked extractors' suitable()s name).
        url_matching.extractor_key("https://example.invalid/warm-up")
        rehearse(probe)
