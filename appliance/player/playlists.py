"""HLS playlists for a file of the download folder (YTPTube's three): the master playlist
(the video, and a subtitle track per subtitle sidecar), the video's VOD media playlist, and a
subtitle's one-entry playlist.

Segments are SEGMENT seconds in the playlist. A video that is transcoded is cut at the SEGMENT
marks themselves. A video whose codec a browser plays (H.264, 8-bit 4:2:0) is copied, so it
can only be cut at keyframes: segment n runs from the last keyframe at or before its mark to
just before the last keyframe at or before the next mark (found by one seek each, see
``segments.segment_command``), so segments neither overlap nor leave gaps, and each lasts
SEGMENT seconds give or take a keyframe interval. The segment endpoint rebuilds the same
plan from the same (cached) facts, so a segment's number is all it needs.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any
from urllib.parse import quote

from . import probe

SEGMENT = 6.0
# The boundary keyframe belongs to the next segment: a copied segment stops just before it.
EDGE = 0.0005
PLAYABLE_VIDEO = {"h264"}
PLAYABLE_PIXELS = {"yuv420p", "yuvj420p"}
AAC = "aac"
# The longest file the player cuts (11.6 days: 166,667 segments, a 17 MB playlist). A file's
# header may claim any length (a crafted mp4 says 136 years), and the plan and the playlist
# grow with it: a 50-day claim made a playlist of tens of MB, 136 years filled the memory.
MAX_DURATION = 1_000_000.0


@dataclasses.dataclass(frozen=True)
class Plan:
    spans: list[tuple[float, float]]  # (start, duration) of each segment
    copy_video: bool
    copy_audio: bool
    has_video: bool
    has_audio: bool
    # The file's first timestamp (MPEG-TS starts at 1.4 s): the spans count from it, and the
    # keyframes ffprobe finds are on the file's own clock.
    start: float = 0.0


def copyable(data: dict[str, Any]) -> bool:
    videos = probe.streams(data, "video")
    return bool(videos) and videos[0].get("codec_name") in PLAYABLE_VIDEO \
        and videos[0].get("pix_fmt") in PLAYABLE_PIXELS


def plan(data: dict[str, Any], convert_video: bool = False) -> Plan:
    total = probe.duration(data)
    if total is None:
        raise probe.ProbeError("The file has no duration ffprobe can read; it cannot be played.")
    if total > MAX_DURATION:
        raise probe.ProbeError(f"The file says it lasts {total:.0f} s, more than the "
                               f"{MAX_DURATION:.0f} s the player plays.")
    has_video = bool(probe.streams(data, "video"))
    copy_video = has_video and not convert_video and copyable(data)
    audios = probe.streams(data, "audio")
    count = max(1, math.ceil(total / SEGMENT - EDGE))
    spans = [(i * SEGMENT, min(SEGMENT, total - i * SEGMENT)) for i in range(count)]
    # AAC (most of what YouTube serves) is copied whatever the video's fate: encoding it
    # again cost a Pi's CPU for nothing (``segments.segment_command`` cuts it cleanly).
    copy_audio = bool(audios) and audios[0].get("codec_name") == AAC
    return Plan(spans, copy_video, copy_audio, has_video, bool(audios), probe.start_time(data))


def _url(prefix: str, route: str, rel: str, suffix: str, ticket: str | None = None) -> str:
    """A player URL; with the file ticket the playlist was read with, carried on."""
    # by its bytes: a name that is no UTF-8 (os.fsdecode's surrogate escapes) as it is on disk
    url = f"{prefix}/api/player/{route}/{quote(os.fsencode(rel))}{suffix}"
    if ticket is None:
        return url
    return f"{url}{'&' if '?' in suffix else '?'}ticket={quote(ticket, safe='')}"


def master(prefix: str, rel: str, data: dict[str, Any],
           subtitles: list[dict[str, Any]], ticket: str | None = None) -> str:
    """The master playlist. Read with a file ticket it has no subtitle tracks: the ticket
    opens the one file, and the subtitles are files of their own."""
    total = probe.duration(data) or 0.0
    lines = ["#EXTM3U", "#EXT-X-VERSION:3"]
    group = ""
    for sub in subtitles if ticket is None else []:
        group = ',SUBTITLES="subs"'
        uri = _url(prefix, "m3u8/subtitle", sub["file"], f".m3u8?duration={total:.6f}")
        name = sub["name"].replace('"', "'")
        lines.append(f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="{name}",DEFAULT=NO,'
                     f'AUTOSELECT=NO,FORCED=NO,LANGUAGE="{sub["lang"]}",URI="{uri}"')
    try:
        bandwidth = int(data.get("format", {}).get("bit_rate") or 0)
    except ValueError:
        bandwidth = 0
    lines.append(f"#EXT-X-STREAM-INF:PROGRAM-ID=1,BANDWIDTH={bandwidth or 1_000_000}{group}")
    lines.append(_url(prefix, "m3u8/video", rel, ".m3u8", ticket))
    return "\n".join(lines) + "\n"


def video(prefix: str, rel: str, made: Plan, version: str, ticket: str | None = None) -> str:
    """The VOD playlist of ``made``'s segments; their URLs name the file's ``version``, under
    which each is cached for good."""
    target = max(1, math.ceil(max(d for _, d in made.spans)))
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]
    flags = f"&vc={0 if made.copy_video or not made.has_video else 1}" \
            f"&ac={0 if made.copy_audio or not made.has_audio else 1}&v={quote(version)}"
    for index, (_, length) in enumerate(made.spans):
        lines.append(f"#EXTINF:{length:.6f},")
        lines.append(_url(prefix, f"segments/{index}", rel, f".ts?sd={length:.6f}{flags}",
                          ticket))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def subtitle(prefix: str, rel: str, duration: float) -> str:
    return "\n".join([
        "#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{max(1, math.ceil(duration))}",
        "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD", f"#EXTINF:{duration:.6f},",
        _url(prefix, "subtitle", rel, ".vtt"), "#EXT-X-ENDLIST",
    ]) + "\n"
