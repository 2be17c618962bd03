"""NFO files for Jellyfin, Kodi, Emby and Plex (through its agents), beside the media file."""

from __future__ import annotations

import datetime as dt
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from .. import errors, kinds
from ..atomic import write_in
from ..files import trees
from ..path_limits import real_path
from ..units import finite
from ..xml_text import xml_text


def _date(info: dict[str, Any]) -> dt.date | None:
    raw = str(info.get("upload_date") or info.get("release_date") or "")
    try:
        return dt.datetime.strptime(raw, "%Y%m%d").date()
    except ValueError:
        return None


def _element(kind: str, info: dict[str, Any], date: dt.date) -> ET.Element:
    root = ET.Element("episodedetails" if kind == "tv" else "movie")

    def add(tag: str, value: Any, **attrs: str) -> None:
        text = "" if value is None else xml_text(value)
        if text:
            ET.SubElement(root, tag, {k: xml_text(v) for k, v in attrs.items()}).text = text

    add("title", info.get("title"))
    add("plot", info.get("description"))
    if kind == "tv":
        add("showtitle", info.get("uploader") or info.get("channel"))
        add("season", date.year)
        add("episode", int(date.strftime("%m%d")))
        add("aired", date.isoformat())
    else:
        add("year", date.year)
        add("premiered", date.isoformat())
        add("studio", info.get("uploader") or info.get("channel"))
    if (duration := finite(info.get("duration"))) is not None and duration > 0:
        add("runtime", max(1, round(duration / 60)))
    add("uniqueid", info.get("id"), type=str(info.get("extractor") or "ytdlp").lower(),
        default="true")
    for tag in info.get("tags") or []:
        add("tag", tag)
    return root


def write_nfo(media: Path, kind: str, info: dict[str, Any], *, root: Path | None = None,
              overwrite: bool = False) -> Path:
    """Write ``<media stem>.nfo`` in ``media``'s folder as opened, which must lie in ``root``
    (the download folder; none but the folder itself when None). Raises ValueError when the
    info has no usable date (media servers sort episodes by it) or the folder is not where
    its path led when checked, and FileExistsError when one exists and ``overwrite`` is off.
    Written by its path (here, in the service, no download's guard of its writes), a folder
    swapped for a link once the download's file was there had the NFO written where the
    link led, over any file of its name there."""
    date = _date(info)
    if date is None:
        raise ValueError("the item has no upload or release date to put in an NFO file")
    target = media.with_suffix(".nfo")
    if kinds.folders_own(target.name):
        # a video titled "tvshow": its NFO replaced the show's, and the media server read the
        # channel's folder as one episode
        raise ValueError(f"{target.name} is the show's NFO of the folder, not this video's")
    tree = ET.ElementTree(_element(kind, info, date))
    ET.indent(tree)
    body = ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True)
    folder = Path(real_path(media.parent))
    try:
        opened = trees.open_folder(folder, root or folder)
    except errors.AppError as exc:
        raise ValueError(exc.message) from None
    try:
        if not overwrite and _there(opened, target.name):
            raise FileExistsError(str(target))
        write_in(opened, target.name, body)
    finally:
        os.close(opened)
    return target


def _there(folder: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=folder)
    except FileNotFoundError:
        return False
    return True
