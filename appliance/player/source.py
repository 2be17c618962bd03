"""How ffmpeg and ffprobe are handed a file of the download folder.

ffmpeg picks a demuxer from a file's content, not its name, and some demuxers open other
files: an HLS playlist or an ffconcat list named ``x.mp4`` would make ffmpeg read files (or
URLs) outside the download folder and serve them as the player's segments. So every input
that is a user's file is opened with a whitelist of the demuxers the player plays
(``-format_whitelist``; a nested open inherits it) and of the protocols (``file`` only).
ffmpeg 5.1 refuses anything else with "Format not on whitelist".

And ffmpeg is handed the file the API checked, not a path it opens again later: the API opens
it (``files.reading.open_regular``: no symlink followed, no blocking on a FIFO, a regular file
inside the download folder, else 404/403) and the child reads that descriptor as
``file:/proc/self/fd/N``, which opens the same inode again (so seeking works), whatever the
path names by then.
"""

from __future__ import annotations

import io

# The audio and video containers of appliance.kinds' media suffixes (by ffmpeg's demuxer names):
# no playlist or indirection demuxer (hls, concat, image2, tee, data, …) is among them.
MEDIA_FORMATS = ("mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "mpegts",
                 "mpeg", "mp3", "aac", "flac", "ogg", "wav", "avi", "flv", "asf")
# The subtitles the player converts (kinds.PLAYABLE_SUBTITLES: srt, ass, vtt).
SUBTITLE_FORMATS = ("srt", "ass", "webvtt")
REFUSED = "Format not on whitelist"


def input_args(url: str, formats: tuple[str, ...] = MEDIA_FORMATS,
               protocol: str = "file") -> list[str]:
    """ffmpeg's (or ffprobe's) input options and ``-i`` for a user's file at ``url`` (or
    its text on ``pipe:0``, with the ``pipe`` protocol)."""
    return ["-format_whitelist", ",".join(formats), "-protocol_whitelist", protocol,
            "-i", url]


def refused(stderr: str) -> bool:
    """Whether ffmpeg refused the input for its format (the whitelist), not for damage."""
    return REFUSED in stderr


def url(media: io.FileIO) -> str:
    """The input for a child that inherits ``media`` (``pass_fds``): the same inode."""
    return f"file:/proc/self/fd/{media.fileno()}"
