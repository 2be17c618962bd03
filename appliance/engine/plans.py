"""How an item will download: its preset merged in (request > preset > configured defaults),
the archive that applies to it, and the exact yt-dlp command line that results.

Settings are read from the service's ``SettingsHolder`` at each plan: a plan is made with the
settings of its moment, and a download keeps the plan it started with."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

from ..config import Settings, SettingsHolder
from ..errors import invalid
from ..store import Item
from .options import parse_cli, resolve_folder
from .presets import Preset, Presets

DEFAULT_ARCHIVE = "archive.txt"
ARCHIVE_FOLDER = "archives"


@dataclasses.dataclass(frozen=True)
class Plan:
    preset: Preset
    root: Path  # the download folder ``home`` lies in, as configured when planned
    home: Path
    template: str
    cookies: str
    args: list[str]
    archive: Path | None

    def command_line(self, url: str, settings: Settings, cookie_file: Path | None) -> str:
        """The yt-dlp command as it runs (``POST /api/yt-dlp/command/``)."""
        argv = ["yt-dlp", "--paths", str(self.home), "--output",
                self.template or settings.output_template]
        if cookie_file is not None:
            argv += ["--cookies", str(cookie_file)]
        if self.archive is not None:
            argv += ["--download-archive", str(self.archive)]
        return shlex.join([*argv, *self.args, url])


class Planner:
    def __init__(self, settings: SettingsHolder, presets: Presets) -> None:
        self.settings_holder = settings
        self.presets = presets
        self._defaults: tuple[str, list[str]] = ("", [])

    @property
    def settings(self) -> Settings:
        return self.settings_holder.current

    def _parsed_defaults(self, cli: str) -> list[str]:
        kept = self._defaults
        if kept[0] != cli:  # parsed once per value of the setting
            kept = self._defaults = (cli, parse_cli(cli).args)
        return list(kept[1])

    def archive_path(self, preset: Preset) -> Path | None:
        return self._archive_path(preset, self.settings)

    @staticmethod
    def _archive_path(preset: Preset, settings: Settings) -> Path | None:
        if preset.archive:
            return settings.config_path / ARCHIVE_FOLDER / preset.archive
        if settings.keep_archive:
            return settings.config_path / DEFAULT_ARCHIVE
        return None

    def plan(self, item: Item) -> Plan:
        preset = self.presets.resolve(item.preset)
        folder = item.folder or preset.folder
        # Later options win in yt-dlp's parser: defaults, then the preset, then the item.
        settings = self.settings  # read once: they may change meanwhile
        args = [*self._parsed_defaults(settings.ytdlp_cli), *preset.cli_args,
                *_item_args(item.cli or "")]
        root = settings.download_path
        return Plan(
            preset=preset,
            root=root,
            home=resolve_folder(root, folder),
            template=item.template or preset.template,
            cookies=item.cookies or preset.cookies,
            args=args,
            archive=self._archive_path(preset, settings),
        )


def _item_args(cli: str) -> list[str]:
    """An item's own options, judged again as they are about to run: an item stored by an
    earlier version, whose split of a command line differed from yt-dlp's, ran an --exec
    hidden in another option's values. Refused plainly, on the item, not dropped."""
    options = parse_cli(cli)
    if options.removed:
        raise invalid(f"Refused: this item's options {', '.join(options.removed)} are not "
                      "allowed (they run programs or reach outside the download folder). "
                      "Add it again without them.")
    return options.args
