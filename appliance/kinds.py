"""What a file is, from its name: the contract's ``content_type``, its MIME type, and which of
its neighbours are its sidecars (subtitles, thumbnail, NFO, info.json beside the media)."""

from __future__ import annotations

import functools
import mimetypes
import re
from collections.abc import Iterable
from typing import Any

VIDEO = "video"
AUDIO = "audio"
SUBTITLE = "subtitle"
IMAGE = "image"
TEXT = "text"
METADATA = "metadata"
DIR = "dir"
DOWNLOAD = "download"
MEDIA = (VIDEO, AUDIO)

# Every media file yt-dlp may write is one (yt_dlp.utils.MEDIA_EXTENSIONS): a video named of
# no known kind was no media, and a video's deleted, renamed or zipped with the file of the
# shorter name took its subtitles and NFO (``clip.english.ogv``'s went with ``clip.mp4``).
_BY_SUFFIX: dict[str, str] = {
    **dict.fromkeys(("mp4", "mkv", "webm", "avi", "mov", "m4v", "ts", "mpv", "ogm", "flv",
                     "wmv", "3gp", "mpg", "mpeg", "3g2", "f4v", "mk3d", "divx", "ogv", "asf"),
                    VIDEO),
    **dict.fromkeys(("mp3", "flac", "aac", "opus", "wav", "m4a", "ogg", "oga", "m4b", "wma",
                     "mka", "weba", "aiff", "alac", "ape", "spx", "vorbis", "m4r", "f4a",
                     "f4b", "ogx"), AUDIO),
    **dict.fromkeys(("srt", "ass", "ssa", "vtt", "smi", "sub", "idx", "lrc"), SUBTITLE),
    **dict.fromkeys(("jpg", "jpeg", "png", "gif", "bmp", "webp", "avif"), IMAGE),
    # (url, webloc, desktop: the internet shortcuts of --write-link, a video's own)
    **dict.fromkeys(("txt", "md", "yml", "yaml", "description", "plexmatch", "log", "url",
                     "webloc", "desktop"), TEXT),
    **dict.fromkeys(("nfo", "json", "torrent", "xml"), METADATA),
}
# Subtitles the player converts to WebVTT (what yt-dlp writes; YTPTube's list).
PLAYABLE_SUBTITLES = frozenset({".srt", ".vtt", ".ass"})
# Folder-level artwork that media centers read (beside every file of the folder), the
# pictures a channel's metadata writes among them (poster, fanart, thumb, banner, icon,
# landscape), and the show's NFO: the folder's own, never one video's sidecar.
FOLDER_IMAGES = ("poster", "thumbnail", "artwork", "cover", "fanart", "thumb", "banner", "icon",
                 "landscape")
FOLDER_NFOS = ("tvshow.nfo",)
_LANG = re.compile(r"\.(?P<lang>[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})?)\.[^.]+$")

_MIME_EXTRA = {
    ".mkv": "video/x-matroska", ".webm": "video/webm", ".ts": "video/mp2t",
    ".m4a": "audio/mp4", ".opus": "audio/ogg", ".flac": "audio/flac",
    ".vtt": "text/vtt", ".srt": "application/x-subrip", ".ass": "text/x-ssa",
    ".nfo": "text/xml", ".webp": "image/webp", ".avif": "image/avif",
}


def content_type(name: str, is_dir: bool = False) -> str:
    if is_dir:
        return DIR
    lowered = name.lower()  # (an .info.json is metadata by its json)
    return _BY_SUFFIX.get(lowered.rpartition(".")[2] if "." in lowered else "", DOWNLOAD)


def mime_type(name: str, is_dir: bool = False) -> str:
    if is_dir:
        return "directory"
    return _mime_of_suffix("." + name.lower().rpartition(".")[2] if "." in name else "")


@functools.lru_cache(maxsize=512)
def _mime_of_suffix(suffix: str) -> str:
    # a listing page asks for 1,000 of these; mimetypes is slow and a suffix says it all
    return _MIME_EXTRA.get(suffix) or mimetypes.guess_type("x" + suffix, strict=False)[0] \
        or "application/octet-stream"


def stem(name: str) -> str:
    return name.rpartition(".")[0] if "." in name else name


def own_sidecars(name: str, siblings: Iterable[str]) -> list[str]:
    """The files among ``siblings`` (names in the same folder) that are ``name``'s own: named
    ``<stem>.*``, but never a media file (``Show.Extended.mp4`` beside ``Show.mp4`` is a video
    of its own) nor what such a file's longer name claims (``Show.Extended.en.srt`` is
    ``Show.Extended.mp4``'s). What a rename or a move takes along, what a zip adds."""
    prefix = stem(name) + "."
    named = [o for o in siblings if o != name and o.startswith(prefix)]
    media = [o for o in named if content_type(o) in MEDIA]
    claimed = tuple(stem(o) + "." for o in media if stem(o) + "." != prefix)
    return [o for o in named
            if o not in media and not o.startswith(claimed) and not folders_own(o)]


def folders_own(name: str) -> bool:
    """Whether ``name`` is its folder's own file, which media centers read for the whole
    folder (its artwork, a show's NFO): never a video's sidecar, whatever the video's title.
    A channel's episode titled "poster" or "tvshow", deleted by retention, renamed or moved,
    took the channel's poster.jpg or tvshow.nfo with it."""
    lowered = name.lower()
    return lowered in FOLDER_NFOS or (
        stem(lowered) in FOLDER_IMAGES and content_type(lowered) == IMAGE)


def sidecars(name: str, siblings: Iterable[str], folder: str) -> dict[str, list[dict[str, Any]]]:
    """The sidecars of ``name`` among ``siblings`` (names in the same folder, non-empty files):
    its own (``own_sidecars``) and the folder's artwork, grouped by content type; paths are
    relative to the download folder (``folder`` is the file's folder there). Subtitles get
    ``lang`` and a display ``name``, as YTPTube's do."""
    siblings = list(siblings)
    prefix = stem(name) + "."
    own = set(own_sidecars(name, siblings))
    found: dict[str, list[dict[str, Any]]] = {}
    index = 0
    for other in sorted(siblings):
        folder_image = stem(other).lower() in FOLDER_IMAGES and content_type(other) == IMAGE
        if other == name or (other not in own and not folder_image):
            continue
        kind = content_type(other)
        path = f"{folder}/{other}" if folder else other
        entry: dict[str, Any] = {"file": path}
        if kind == SUBTITLE:
            suffix = "." + other.rpartition(".")[2].lower()
            if suffix not in PLAYABLE_SUBTITLES:
                continue
            match = _LANG.search(other[len(prefix) - 1:])
            lang = match.group("lang") if match else "und"
            entry.update(lang=lang, name=f"{suffix[1:].upper()} ({index}) - {lang}")
            index += 1
        found.setdefault(kind, []).append(entry)
    return found
