"""Presets: named sets of folder, template, cookies and yt-dlp options, merged into each item
with the priority request > preset > configured defaults.

Built-in presets live in this module and are written to the database at start (so they have
ids like any other); they cannot be changed or deleted through the API.

Owners: the database holds the presets (the ``Collection``); a preset's folder is checked
against the download folder the service's ``SettingsHolder`` names at that moment.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable
from typing import Any

from ..config import SettingsHolder
from ..errors import CONFLICT, NOT_FOUND, AppError, invalid
from ..store.collections import Collection
from .options import Context, check_template, parse_cli, resolve_folder
from .records import RecordService, check_types

NFO_KINDS = ("", "tv", "movie")
_THUMBS = "--write-thumbnail --convert-thumbnails jpg --embed-metadata"

BUILTIN: tuple[dict[str, str], ...] = (
    {"name": "default", "description": "yt-dlp's choice of the best formats.", "cli": ""},
    {
        "name": "video-1080p",
        "description": "Best video up to 1080p with the best audio.",
        "cli": '-f "bv*[height<=1080]+ba/b[height<=1080]/b"',
    },
    {
        "name": "video-720p-mp4",
        "description": "Video up to 720p, as mp4.",
        "cli": '-f "bv*[height<=720]+ba/b[height<=720]/b" --merge-output-format mp4 '
               "--remux-video mp4",
    },
    {
        "name": "audio-m4a",
        "description": "Audio only, m4a, with the thumbnail as cover and metadata.",
        "cli": '-f "ba[ext=m4a]/ba/b" -x --audio-format m4a --embed-thumbnail --embed-metadata',
    },
    {
        "name": "audio-mp3",
        "description": "Audio only, mp3 (best quality), with cover and metadata.",
        "cli": '-f "ba/b" -x --audio-format mp3 --audio-quality 0 --embed-thumbnail '
               "--embed-metadata",
    },
    {
        "name": "mobile-mp4",
        "description": "Phone-friendly mp4 up to 720p: h264/aac, faststart, chapters, metadata.",
        "cli": '-f "bv*[height<=720][vcodec^=avc]+ba[acodec^=mp4a]/b[height<=720]/b" '
               "--merge-output-format mp4 --remux-video mp4 --embed-chapters --embed-metadata "
               '--ppa "ffmpeg:-movflags +faststart"',
    },
    {
        "name": "media-server-tv",
        "description": "Jellyfin/Kodi/Plex TV layout: a show per uploader, a season per "
                       "year, episode NFO and thumbnail beside each file.",
        "template": "%(uploader|Unknown)s/Season %(upload_date>%Y|0)s/"
                    "%(uploader|Unknown)s - S%(upload_date>%Y|0)sE%(upload_date>%m%d|0)s - "
                    "%(title)s [%(id)s].%(ext)s",
        "cli": _THUMBS,
        "nfo": "tv",
    },
    {
        "name": "media-server-movie",
        "description": "Jellyfin/Kodi/Plex movie layout: a folder per title with a movie NFO "
                       "and poster.",
        "template": "%(title)s (%(upload_date>%Y|0)s)/%(title)s (%(upload_date>%Y|0)s) "
                    "[%(id)s].%(ext)s",
        "cli": _THUMBS,
        "nfo": "movie",
    },
)

FIELDS = ("name", "description", "folder", "template", "cookies", "cli", "nfo", "builtin",
          "priority")
# "default" is how clients see "builtin"; they may send it back unchanged.

EDITABLE = ("name", "description", "folder", "template", "cookies", "cli", "nfo", "priority")
# Fields of YTPTube's preset objects that have no meaning here: its web UI sends a preset back
# as it read it, so these are ignored rather than refused (an unknown name is still refused).
YTPTUBE_ONLY = ("created_at", "updated_at", "_id", "id", "cookies_file", "args", "format",
                "postprocessors", "output_template", "default_preset")


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    folder: str = ""
    template: str = ""
    cookies: str = ""
    cli_args: tuple[str, ...] = ()
    archive: str | None = None
    nfo: str = ""


class Presets(RecordService):
    label = "preset"
    fields = (*EDITABLE, "default")  # clients may send a read preset back as it was
    ignored = YTPTUBE_ONLY
    defaults = {**dict.fromkeys(EDITABLE, ""), "builtin": False, "priority": 0}

    def __init__(self, table: Collection, settings: SettingsHolder,
                 check_values: Callable[[str], object]) -> None:
        super().__init__(table)
        self.settings = settings
        # yt-dlp's own word on the options' values, in a download process (engine.converted)
        self.check_values = check_values
        # What names a preset (conditions, tasks: "task 'x'"), told by whoever knows them.
        self.users: list[Callable[[str], list[str]]] = []

    def seed(self) -> None:
        """Write the built-in presets (new releases may change them)."""
        for builtin in BUILTIN:
            values = {**dict.fromkeys(EDITABLE, ""), **builtin, "builtin": True,
                      "priority": 0}
            existing = self.table.by_name(builtin["name"])
            if existing is None:
                self.table.create(values)
            else:
                self.table.update(existing["id"], values)

    def public(self, record: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in record.items() if k != "builtin"}
        data["default"] = bool(record.get("builtin"))
        return data

    def update(self, record_id: int, values: dict[str, Any], *, partial: bool
               ) -> dict[str, Any]:
        name = self._record(record_id)["name"]
        renamed = values.get("name") if isinstance(values, dict) else None
        if isinstance(renamed, str) and renamed.strip() and renamed.strip() != name:
            self._refuse_if_used(name, "renamed")
        return super().update(record_id, values, partial=partial)

    def delete(self, record_id: int) -> dict[str, Any]:
        self._refuse_if_used(self._record(record_id)["name"], "deleted")
        return super().delete(record_id)

    def _refuse_if_used(self, name: str, action: str) -> None:
        """409 while something names the preset: a condition then fell back to the default
        preset without a word, and a task failed every run ("Preset not found")."""
        users = [user for named_by in self.users for user in named_by(name)]
        if users:
            more = f" and {len(users) - 5} more" if len(users) > 5 else ""
            raise AppError(f"Preset '{name}' cannot be {action}: {', '.join(users[:5])}{more} "
                           "use it. Give them another preset first.", CONFLICT)

    def check(self, name: str, code: str = NOT_FOUND) -> str:
        if self.table.by_name(name) is None:
            raise AppError(f"Preset '{name}' not found.", code)
        return name

    def resolve(self, name: str) -> Preset:
        """The preset an item names, as the engine uses it (unknown names: ``default``)."""
        record = self.table.by_name(name or "default") or self.table.by_name("default") or {}
        context = Context.BUILTIN_PRESET if record.get("builtin") else Context.DOWNLOAD
        options = parse_cli(record.get("cli") or "", context=context)
        return Preset(
            name=record.get("name", "default"),
            folder=record.get("folder") or "",
            template=record.get("template") or "",
            cookies=record.get("cookies") or "",
            cli_args=tuple(options.args),
            archive=options.archive,
            nfo=record.get("nfo") or "",
        )

    def validate(self, values: dict[str, Any], partial: bool) -> dict[str, Any]:
        from .requests import check_cookies

        clean = {k: v for k, v in values.items() if k in EDITABLE}
        if isinstance(clean.get("priority"), str) and clean["priority"].strip().isdigit():
            clean["priority"] = int(clean["priority"])  # YTPTube takes "5" too
        check_types(clean, {**dict.fromkeys(EDITABLE, str), "priority": int})
        if clean.get("priority") is None:
            clean.pop("priority", None)
        elif clean["priority"] < 0:
            raise invalid("priority must be 0 or more.")
        if not partial or "name" in clean:
            name = (clean.get("name") or "").strip()
            if not name or len(name) > 100:
                raise invalid("name is required (1 to 100 characters).")
            clean["name"] = name
        if clean.get("folder"):
            resolve_folder(self.settings.current.download_path, clean["folder"])
        if "template" in clean:
            clean["template"] = check_template(clean["template"])
        if clean.get("cookies"):
            check_cookies(clean["cookies"])
        if clean.get("nfo", "") not in NFO_KINDS:
            raise invalid("nfo must be '', 'tv' or 'movie'.")
        if clean.get("cli"):
            self._check_cli(clean)
        return clean

    def _check_cli(self, clean: dict[str, Any]) -> None:
        """``cli`` on the option table and the policy, then on yt-dlp itself; a ``-P`` inside
        the download folder becomes the preset's folder."""
        options = parse_cli(clean["cli"])
        if options.removed:
            raise invalid("These options are not allowed in a preset: "
                          f"{', '.join(options.removed)}.")
        if options.folder:  # -P inside the download folder: the preset's folder
            if clean.get("folder") and clean["folder"] != options.folder:
                raise invalid("folder and -P name different folders; give one.")
            clean["folder"] = options.folder
            resolve_folder(self.settings.current.download_path, options.folder)
        archive = ["--download-archive", options.archive] if options.archive else []
        clean["cli"] = shlex.join(archive + options.args)
        if options.args:
            self.check_values(shlex.join(options.args))
