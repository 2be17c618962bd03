"""Fragments of a stream that yt-dlp left out of a finished download.

By default (as on its command line) yt-dlp skips a fragment of an HLS or DASH download that
the site does not send after the retries, and the download "completes" with a gap in the
video that nobody was told of: yt-dlp says it only on its console (``to_screen``, which
reaches the download process's logger as ``debug``); ffmpeg, when it downloads the stream,
only in a warning (``ffmpeg_words`` says it the same way). The finished item says it instead
(``engine.downloading``).
"""

from __future__ import annotations

import re

from .ffmpeg_words import SKIPPED_SEGMENT


class FragmentsSkipped:
    """What yt-dlp's console says of one download's fragments: how many, which it skipped,
    and the site's last answer to a fragment asked again."""

    def __init__(self) -> None:
        self.total = self.skipped = 0
        self.reason = ""

    def hear(self, msg: str) -> None:
        if (total := _TOTAL_FRAGMENTS.search(msg)) is not None:
            self.total += int(total[1])
        elif (error := _FRAGMENT_ERROR.search(msg)) is not None:
            self.reason = error[1][:200]
        elif "Skipping fragment" in msg:
            self.skipped += 1
        elif msg.startswith(SKIPPED_SEGMENT):  # ffmpeg's (ffmpeg_words)
            self.skipped += 1
            self.reason = msg.removeprefix(SKIPPED_SEGMENT)[:200] or self.reason

    def said(self) -> str | None:
        """What the item says of its gaps; None without any."""
        if not self.skipped:
            return None
        of = f"the video's {self.total}" if self.total >= self.skipped else "the video's"
        why = f" ({self.reason})" if self.reason else ""
        each = "a gap where it was" if self.skipped == 1 else "gaps where they were"
        return (f"The site did not send {self.skipped} of {of} fragments{why}: it has {each}.")


_TOTAL_FRAGMENTS = re.compile(r"^\[\w+\] Total fragments: (\d+)")
_FRAGMENT_ERROR = re.compile(r"Got error: (.*?)\.? Retrying fragment")
