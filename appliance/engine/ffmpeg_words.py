"""Why ffmpeg failed, when yt-dlp hands it a download (HLS, DASH, a live stream).

yt-dlp runs that ffmpeg with ``-loglevel quiet`` (the download process's yt-dlp is quiet), so a
failed download said only "ffmpeg exited with code 1", and ffmpeg's reason (a 403 on a
segment, a refused ``file:`` source, a broken stream) was said nowhere. In the download
process, that ffmpeg now runs at ``-loglevel error`` with ``-nostats``, its error lines read
from a pipe (the last few kept, each cut short), and they follow the exit code in the error.

``-nostats`` matters beside the pipe: below ``info`` ffmpeg writes its status line straight to
stderr twice a second, even while it waits for a byte that never comes, and the bytes a
download's processes read count as work for the stall watch (``work_signs``).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import re
import subprocess
import threading
from typing import Any

LINES_KEPT = 3
LINE_BYTES = 300
# ffmpeg's prefix of a line: the component and its context's address, which say nothing here.
_ADDRESS = re.compile(r"\[(\w+) @ 0x[0-9a-f]+\] ")


class _Heard:
    """The error lines of the last ffmpeg a download handed to (one job at a time per
    process)."""

    words: str | None = None


def _quiet_at(args: Any) -> int | None:
    """Where ``-loglevel quiet`` stands in the arguments of an ffmpeg run, or None."""
    if not (isinstance(args, list) and args
            and os.path.basename(str(args[0])).startswith("ffmpeg")):
        return None
    return next((i for i, pair in enumerate(itertools.pairwise(args))
                 if pair == ("-loglevel", "quiet")), None)


def _listen(stream: Any) -> None:
    kept: collections.deque[str] = collections.deque(maxlen=LINES_KEPT)
    with contextlib.suppress(OSError, ValueError):
        for raw in stream:
            line = _ADDRESS.sub(r"[\1] ", raw[:LINE_BYTES].decode("utf-8", "replace").strip())
            if line:
                kept.append(line)
    _Heard.words = "; ".join(kept) or None


def hear_ffmpeg_failures() -> None:
    """In a download process (the zygote, before it forks): yt-dlp's ffmpeg downloader says
    why ffmpeg failed. Skipped if yt-dlp's internals moved: the bare exit code is said then."""
    try:
        from yt_dlp.downloader import external
        from yt_dlp.downloader.external import FFmpegFD
    except ImportError:
        return
    base = external.Popen
    if getattr(base, "heard", False):
        return

    class Popen(base):  # type: ignore[misc,valid-type]
        heard = True

        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            at = _quiet_at(args)
            if at is None or kwargs.get("stderr") is not None:
                super().__init__(args, *rest, **kwargs)
                return
            _Heard.words = None
            audible = [args[0], "-nostats", *args[1:at + 1], "error", *args[at + 2:]]
            super().__init__(audible, *rest, stderr=subprocess.PIPE, **kwargs)
            self._listener = threading.Thread(target=_listen, args=(self.stderr,),
                                              name="ffmpeg-stderr", daemon=True)
            self._listener.start()

        def wait(self, timeout: float | None = None) -> int:
            code = super().wait(timeout)
            if (listener := getattr(self, "_listener", None)) is not None:
                listener.join(5)  # its pipe ends with ffmpeg (unless ffmpeg left a child)
            return code

    def report_error(self: Any, message: str, *args: Any, **kwargs: Any) -> Any:
        if message.startswith("ffmpeg exited with code") and _Heard.words:
            message = f"{message}: {_Heard.words}"
        return self.ydl.report_error(message, *args, **kwargs)

    external.Popen = Popen
    FFmpegFD.report_error = report_error
