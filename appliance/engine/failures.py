"""Failures said plainly. yt-dlp reports a full disk or a folder the service may not write as
an errno deep in a message, and a site that cannot be reached as a Python repr
(``TransportError("HTTPConnection(host=…)…")``) with advice for its own command line
(``--ffmpeg-location``, ``yt-dlp -U``) that a person using the service cannot follow. The
person reading the item needs what happened, where, and what to do; yt-dlp's own words follow
in brackets, without the repr and the bug-report footer."""

from __future__ import annotations

import errno
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from ..config import Settings
from ..connection_failures import CONNECTION_REPR, unreached
from ..http_statuses import said
from ..units import human_size
from . import rate_limits

_ERRNO = re.compile(r"\[Errno (\d+)\]")
# A permission error is about the folders only when yt-dlp was writing a file (a socket can
# be refused with the same errno).
_WRITING = re.compile(r"writ|rename|open for|creat|mkdir|move", re.IGNORECASE)

# What yt-dlp appends that no one using the service can act on: the exception's repr
# (ExtractorError's " (caused by …)"), its footer asking for a bug report against its own
# latest version, and advice for its own command line.
_REPORT_FOOTER = re.compile(r";?\s*please report this issue on .*\Z", re.IGNORECASE | re.DOTALL)
_CAUSED_BY = re.compile(r" \(caused by .*\Z", re.DOTALL)
_COMMAND_LINE_ADVICE = re.compile(
    r"\.?\s*(?:Use --list-formats for a list of available formats"
    r"|Please install or provide the path using --ffmpeg-location"
    r"|Use --enable-file-urls to enable at your own risk"
    r"|Aborting due to --abort-on-error)\.?")

_HTTP_STATUS = re.compile(r"HTTP Error (\d{3}): ([^(;]*?)(?: \(|$|;)")
# yt-dlp's end of a transfer that the site kept cutting ("Got error: 25992 bytes read, 51985
# more expected. Giving up after 10 retries"); a timeout's is said by ``unreached`` first.
_GAVE_UP = re.compile(r"Got error: .*Giving up after (\d+) retries")


def explain(message: str, settings: Settings) -> str:
    """``message`` with a plain explanation in front when it is a known failure; yt-dlp's
    repr and bug-report footer left out in any case."""
    waits = rate_limits.MARK.search(message)
    message = rate_limits.MARK.sub("", message)
    # a refused file's message quotes the site's words: they must not read as another failure
    plain = _not_media(message) or _disk(message, settings) or _site(message)
    if waits:
        plain = f"{plain or ''} {rate_limits.said(int(waits[1]))}".strip()
    words = bare(message)
    return f"{plain} ({words})" if plain else words


def _disk(message: str, settings: Settings) -> str | None:
    found = _ERRNO.search(message)
    code = int(found.group(1)) if found else None
    folders = f"{settings.temp_path} (partial files) and {settings.download_path}"
    if code in (errno.ENOSPC, errno.EDQUOT):  # a job that is no download (those wait: disk_room)
        free = _free(settings.temp_path)
        return (f"The disk is full: {free} free in {settings.temp_path}, where a download "
                f"stays until it is complete. Free some space, then add it again.")
    if code in (errno.EACCES, errno.EPERM) and _WRITING.search(message):
        return (f"The service may not write there: check that the user it runs as owns "
                f"{folders}.")
    if code == errno.EROFS:
        return f"The disk is read-only: {folders} must be on a writable disk."
    return None


def _site(message: str) -> str | None:
    """The plain words for a site that could not be reached or refused, or for what the
    download needs and lacks; None when no rule knows the message."""
    for rule in _RULES:
        plain = rule(message)
        if plain:
            return plain
    return None


def _redirect_loop(message: str) -> str | None:
    if "redirect loop" not in message.lower():
        return None
    return ("The site sends the address round a loop of redirects: it cannot be downloaded "
            "as it stands (some sites do this until a login or cookies are given).")


def _http_status(message: str) -> str | None:
    found = _HTTP_STATUS.search(message)
    return said(int(found[1]), found[2]) if found else None


def _broken_off(message: str) -> str | None:
    found = _GAVE_UP.search(message)
    if not found:
        return None
    return (f"The site broke the transfer off part way through, each of {found[1]} times "
            "yt-dlp tried again: it is overloaded, or the connection is unsteady. Try again "
            "later.")


def _unsupported(message: str) -> str | None:
    if not message.startswith("Unsupported URL: "):
        return None
    # (a task's link is a playlist's or a channel's: "the video's own page" misled there)
    return ("yt-dlp knows no site at this address, and found no video in its page: check the "
            "link (a video's own page, or a playlist's or a channel's; not a page that only "
            "mentions it).")


def _no_format(message: str) -> str | None:
    if "Requested format is not available" not in message:
        return None
    return ("The site does not offer the format asked for (-f in the item's or preset's "
            "options): change it, or see what it offers with GET /api/yt-dlp/url/info.")


def _no_ffmpeg(message: str) -> str | None:
    if not re.search(r"\bffmpeg (?:not found|is not installed)", message):
        return None
    return ("This download needs ffmpeg (to merge, convert or remux), and the service finds "
            "none on its PATH: install it (sudo apt install ffmpeg), then retry.")


def _file_url(message: str) -> str | None:
    if "file:// URLs are disabled" not in message:
        return None
    return ("The site names a file of this box (a file:// address) as part of the video: a "
            "download never reads the box's own files, so this one cannot be downloaded (the "
            "site is broken, or hostile).")


def _ffmpeg_failed(message: str) -> str | None:
    if not re.search(r"\bffmpeg exited with code -?\d+", message):
        return None
    return ("ffmpeg could not download or convert the stream: it is broken, was refused part "
            "way, or names a source a download may not read (ffmpeg's exit code and words "
            "follow). Try again later; a stream that fails each time cannot be downloaded as "
            "it stands.")


# What a site sent instead of the video (``media_check``'s kinds), and what it most often is.
_NOT_MEDIA = re.compile(r"Not media \((\w+)\): ")
_SENT = {
    "html": ("a web page (HTML)", "often a login, a captcha or a block page"),
    "xml": ("an XML document", "often an error or a block page"),
    "json": ("a JSON answer", "often an error: a login or a limit"),
    "text": ("plain text", "often an error or a block message"),
    "empty": ("an empty file", "often a block, or a link that expired"),
    "unreadable": ("bytes no player reads", "ffprobe finds no audio or video in them: a "
                                            "broken file, or a refusal sent as data"),
}


def _not_media(message: str) -> str | None:
    found = _NOT_MEDIA.match(message)
    if not found or found[1] not in _SENT:
        return None
    what, often = _SENT[found[1]]
    return (f"The site sent {what}, not the video: {often}. Nothing was kept, archived or "
            f"written beside it. Open the address in a browser, or give cookies (in a "
            f"preset), then retry.")


_RULES: tuple[Callable[[str], str | None], ...] = (
    unreached, _redirect_loop, _http_status, _broken_off, _unsupported,
    _no_format, _no_ffmpeg, _file_url, _ffmpeg_failed,
)


def bare(message: str) -> str:
    """yt-dlp's words without its repr, its bug-report footer and its command-line advice."""
    text = _REPORT_FOOTER.sub("", message)
    text = _CAUSED_BY.sub("", text)
    text = CONNECTION_REPR.sub("", text)
    return _COMMAND_LINE_ADVICE.sub("", text).strip()


def _free(path: Path) -> str:
    try:
        return human_size(shutil.disk_usage(path).free) or "nothing"
    except OSError:
        return "unknown space"
