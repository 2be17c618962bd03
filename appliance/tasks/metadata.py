"""Channel metadata for media servers (``POST /api/tasks/{id}/metadata``): ``tvshow.nfo``
(Kodi's format, which Jellyfin, Emby and Plex's agents read), the channel's ``.info.json``
and its images (poster, fanart, thumb, banner, icon, landscape) where the source has them.

Everything is written atomically into the task's folder, which must lie inside the download
folder once symlinks are resolved, and is written in that folder as opened (files.trees), not
through a link put in its place since; file names made from the site's title are reduced to
one plain path component.
"""

from __future__ import annotations

import json
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic import write_in
from ..errors import AppError, invalid
from ..files import trees
from ..path_limits import NAME_MAX, byte_length, cut_to_bytes, real_path
from ..url_secrets import with_urls_masked
from ..xml_text import xml_text

log = logging.getLogger(__name__)

IMAGE_KINDS = ("poster", "fanart", "thumb", "banner", "icon", "landscape")
# Which picture each kind takes: YouTube names its channel pictures; anything else has one.
_SOURCES = {
    "poster": ("avatar_uncropped", "avatar"), "thumb": ("avatar_uncropped", "avatar"),
    "icon": ("avatar_uncropped", "avatar"), "fanart": ("banner_uncropped", "banner"),
    "banner": ("banner_uncropped", "banner"), "landscape": ("banner_uncropped", "banner"),
}
# Lone surrogates too: a JSON title may hold one, and no file name can.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|\ud800-\udfff]+')
MAX_NAME = 150  # bytes of a title in a file name
MAX_ID = 64  # bytes of a channel id in a file name
INFO_SUFFIX = ".info.json"


def safe_name(text: str, limit: int = MAX_NAME) -> str:
    """One plain path component for ``text`` (never ``..``, a slash or a control byte), at
    most ``limit`` bytes in UTF-8: the file system counts bytes, and a character is never
    cut in half."""
    name = _UNSAFE.sub("_", text).strip().lstrip(".").strip()
    name = cut_to_bytes(name, limit).strip()
    return name or "channel"


def info_name(title: str, channel_id: str) -> str:
    """``<title> [<id>].info.json`` within the file system's limit on a name."""
    tail = f" [{safe_name(channel_id, MAX_ID)}]{INFO_SUFFIX}"
    return safe_name(title, min(MAX_NAME, NAME_MAX - byte_length(tail))) + tail


def _pictures(info: dict[str, Any]) -> dict[str, str]:
    urls = {str(t.get("id")): str(t["url"]) for t in info.get("thumbnails") or []
            if isinstance(t, dict) and str(t.get("url", "")).startswith(("http://",
                                                                         "https://"))}
    fallback = info.get("thumbnail") if str(info.get("thumbnail", "")).startswith(
        ("http://", "https://")) else next(reversed(list(urls.values())), None)
    chosen = {}
    for kind, names in _SOURCES.items():
        url = next((urls[n] for n in names if n in urls), None)
        if url is None and kind in ("poster", "thumb", "fanart", "landscape"):
            url = fallback
        if url:
            chosen[kind] = url
    return chosen


def _tags(info: dict[str, Any]) -> list[str]:
    """The site's tags as text; what is no list of them (a number: a 500) is none."""
    tags = info.get("tags")
    if not isinstance(tags, list):
        return []
    return [str(t) for t in tags if isinstance(t, str | int | float) and str(t)]


def _year(info: dict[str, Any]) -> int | None:
    for key in ("release_year", "upload_date", "release_date"):
        text = str(info.get(key) or "")
        # ASCII only: "²⁰²⁴" is digits to isdigit() and no number to int() (a 500)
        if text[:4].isascii() and text[:4].isdigit():
            return int(text[:4])
    return None


def _nfo(info: dict[str, Any], images: dict[str, str]) -> bytes:
    root = ET.Element("tvshow")

    def add(tag: str, value: Any, parent: ET.Element = root, **attrs: str) -> None:
        # Dropped: the characters XML 1.0 forbids, which would make the file unreadable.
        if value not in (None, ""):
            ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()}
                          ).text = xml_text(value)

    add("title", info.get("title"))
    add("plot", info.get("description"))
    add("studio", info.get("uploader") or info.get("channel"))
    add("year", _year(info))
    add("uniqueid", info.get("channel_id") or info.get("id"),
        type=str(info.get("extractor_key") or info.get("extractor") or "ytdlp").lower(),
        default="true")
    for tag in _tags(info):
        add("tag", tag)
    for kind in ("poster", "banner", "landscape"):
        if kind in images:
            add("thumb", images[kind], aspect=kind)
    if "fanart" in images:
        add("thumb", images["fanart"], ET.SubElement(root, "fanart"))
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def contained_folder(download_path: Path, folder: Path) -> Path:
    """``folder`` made, and refused when it leads outside the download folder (a symlink).
    Checked before it is made as well as after: made first, a symlink on the way (``link ->
    /etc``) had its folders made outside before the refusal."""
    root = Path(os.path.realpath(download_path))

    def contained() -> Path:
        try:
            real = Path(real_path(folder))
        except OSError as exc:  # a loop or a chain of links the system would not follow
            raise invalid(f"The task's folder cannot be followed: {exc.strerror}.") from None
        if not real.is_relative_to(root):
            raise invalid("The task's folder leads outside the download folder.")
        return real

    contained()
    folder.mkdir(parents=True, exist_ok=True)
    return contained()  # a link put on the way meanwhile


def _fetch(fetch_image: Callable[[str], bytes], url: str) -> bytes | str:
    """The picture's bytes, or why it was refused."""
    try:
        return fetch_image(url) or "the picture is empty"
    except AppError as exc:
        return exc.message
    except Exception as exc:  # one missing picture does not spoil the rest
        log.exception("channel picture %s", url[:200])
        return f"internal error: {type(exc).__name__}"


def write_metadata(download_path: Path, folder: Path, info: dict[str, Any],
                   fetch_image: Callable[[str], bytes]) -> dict[str, Any]:
    """Write the files; the answer of the contract (paths relative to the download
    folder). ``fetch_image`` is the SSRF-safe fetcher with the service's address policy: a
    picture it refuses is left out of ``thumbnails`` and named in ``thumbnails_refused``
    with the reason."""
    home = contained_folder(download_path, folder)
    root = Path(os.path.realpath(download_path))
    channel_id = str(info.get("channel_id") or info.get("id") or "")
    title = str(info.get("title") or info.get("channel") or channel_id or "channel")
    fetched: dict[str, bytes | str] = {}
    images: dict[str, str] = {}
    refused: dict[str, str] = {}
    files: dict[str, str | bytes] = {}  # name: what it holds
    for kind, url in _pictures(info).items():
        if url not in fetched:
            fetched[url] = _fetch(fetch_image, url)
        data = fetched[url]
        if isinstance(data, str):
            refused[kind] = data
            continue
        images[kind] = f"{kind}.jpg"
        files[images[kind]] = data
    json_file = home / info_name(title, channel_id)
    kept = {k: v for k, v in info.items() if k != "entries" and not k.startswith("_")}
    # beside the media (its server's group reads it): the channel's URL without its secrets
    files[json_file.name] = json.dumps(with_urls_masked(kept), ensure_ascii=False, indent=2,
                                       default=str)
    nfo_file = home / "tvshow.nfo"
    files[nfo_file.name] = _nfo(info, images)
    # Written in the folder as opened after the pictures came (the site sends them as slowly
    # as it likes): by their paths, the folder swapped for a link meanwhile had them written
    # where it led, over the files there, outside the download folder.
    opened = trees.open_folder(home, root)
    try:
        for name, body in files.items():
            write_in(opened, name, body)
    finally:
        os.close(opened)

    def shown(path: Path) -> str:
        return str(path.relative_to(root))

    return {
        "id": channel_id, "id_type": str(info.get("extractor_key") or info.get("extractor")
                                         or "").lower(),
        "title": title, "description": info.get("description") or "",
        "uploader": info.get("uploader") or info.get("channel") or "",
        "tags": _tags(info), "year": _year(info),
        "json_file": shown(json_file), "nfo_file": shown(nfo_file),
        "thumbnails": {kind: shown(home / name) for kind, name in images.items()},
        "thumbnails_refused": refused,
    }
