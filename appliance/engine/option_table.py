"""yt-dlp's option table, without yt-dlp in the process that reads it.

Importing yt-dlp costs a process ~9 MB for its whole life (measured in the gunicorn worker
after one add with ``--no-mtime``), and the worker needs no more of it than its option table
to split, check and refuse options (``engine/options.py``): every option's names, whether it
takes a value and how many, its dest, action, type, choices and help. That table is read from
the installed yt-dlp's own parser by a process that imports it (``python -m
appliance.engine.option_table``; or this process, when it has imported yt-dlp anyway: a
download process), kept on disk in the config folder for that yt-dlp version, and rebuilt here
as a stdlib ``optparse`` parser: the same names, the same value counts and types, so the same
answers and the same error texts as yt-dlp's parser for what optparse itself checks. What
yt-dlp checks beyond optparse (the values' meaning: ``--retries lots``) is yt-dlp's to say,
where the params are made (``ytdlp_tuning.parsed_options``).

The table follows the installed yt-dlp: its ``version.py`` is looked at (one ``stat``) on each
use, and a changed one (an update in place) brings the table of the new version.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import optparse
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from .. import bytecode

log = logging.getLogger(__name__)

FILE = "ytdlp-options-{version}.json"  # in the config folder; the last version's only
LAYOUT = 1  # of the table's JSON: a table of another layout is made again
MAKE_TIMEOUT = 60.0
MAKE = [sys.executable, "-I", *bytecode.inherited(), "-m", "appliance.engine.option_table"]
# yt-dlp's callback that reads "KEYS:VALUE" into a dict (--output, --paths): its keys are data
# (the table carries them), so its result is the same here; other callbacks' values are
# checked by yt-dlp itself, where the params are made.
DICT_CALLBACK = "_dict_from_options_callback"
_VERSION = re.compile(r"""^__version__\s*=\s*['"]([^'"]+)['"]""", re.MULTILINE)


# --- made where yt-dlp is imported ----------------------------------------------------------


def describe(parser: optparse.OptionParser, version: str) -> dict[str, Any]:
    """The table of yt-dlp's ``parser`` (JSON types only: read back, it is equal)."""
    containers = [(None, parser), *((group.title, group) for group in parser.option_groups)]
    return {
        "layout": LAYOUT,
        "version": version,
        "groups": [{"title": title, "options": [_describe(option) for option in
                                                container.option_list]}
                   for title, container in containers],
    }


def _describe(option: optparse.Option) -> dict[str, Any]:
    kwargs = option.callback_kwargs or {}
    plain = all(isinstance(v, str | bool | None) for v in kwargs.values())
    dict_callback = getattr(option.callback, "__name__", None) == DICT_CALLBACK and plain
    return {
        "short": list(option._short_opts),
        "long": list(option._long_opts),
        "dest": option.dest,
        "action": option.action,
        "type": option.type,
        "nargs": option.nargs,
        "choices": list(option.choices) if option.choices else None,
        "metavar": option.metavar,
        # as yt-dlp's --help shows it: with the default filled in
        "help": (option.help or "").replace("%default", str(option.default)),
        "dict_keys": dict(kwargs) if dict_callback else None,
    }


def made_here() -> dict[str, Any]:
    """The table of the yt-dlp this process imports."""
    from yt_dlp.options import create_parser
    from yt_dlp.version import __version__

    return describe(create_parser(), __version__)


# --- read without yt-dlp ----------------------------------------------------------------------


class TableParser(optparse.OptionParser):
    """A parser with yt-dlp's options, rebuilt from the table."""

    def __init__(self) -> None:
        super().__init__(prog="yt-dlp", usage=None, add_help_option=False,
                         conflict_handler="resolve")

    def error(self, msg: str) -> Any:
        # as yt-dlp's own parser words it, without the usage text
        raise optparse.OptParseError(f"yt-dlp: error: {str(msg).strip()}\n")

    def _match_long_opt(self, opt: str) -> str:
        # yt-dlp's own rule: two names of one option (--format-sort, --format-sort-force's
        # alias) are not ambiguous
        try:
            return super()._match_long_opt(opt)
        except optparse.AmbiguousOptionError as exc:
            if len({self._long_opt[p] for p in exc.possibilities}) == 1:
                return exc.possibilities[0]
            raise


def _dict_value(option: optparse.Option, opt_str: str, value: Any, parser: Any,
                allowed_keys: str = r"[\w-]+", delimiter: str = ":",
                default_key: str | None = None, multiple_keys: bool = True,
                append: bool = False) -> None:
    """yt-dlp's ``_dict_from_options_callback`` for a "KEYS:VALUE" option: which keys a value
    names, as yt-dlp splits it (only on the option's known keys)."""
    out = dict(getattr(parser.values, option.dest) or {})
    keys_pattern = fr"({allowed_keys})(,({allowed_keys}))*" if multiple_keys else allowed_keys
    multiple_args = not isinstance(value, str)
    match = re.match(fr"(?is)(?P<keys>{keys_pattern}){delimiter}(?P<val>.*)$",
                     value[0] if multiple_args else value)
    if match is not None:
        keys, val = match.group("keys").split(","), match.group("val")
        if multiple_args:
            val = [val, *value[1:]]
    elif default_key is not None:
        keys, val = [default_key], value
    else:
        raise optparse.OptionValueError(
            f'wrong {opt_str} formatting; it should be {option.metavar}, not "{value}"')
    for key in map(str.lower, keys):
        out[key] = [*out.get(key, []), val] if append else val
    setattr(parser.values, option.dest, out)


def _ignore(*_args: Any, **_kwargs: Any) -> None:
    """Another callback's value: yt-dlp checks it where the params are made."""


def _option(entry: dict[str, Any]) -> optparse.Option:
    action, kind = entry["action"], entry["type"]
    keys = entry["dict_keys"]
    if action not in optparse.Option.ACTIONS or action in {"help", "version"}:
        action = "callback"  # prints and stops in yt-dlp: nothing to do here
    extra: dict[str, Any] = {}
    if action == "callback":
        extra = {"callback": _dict_value if keys is not None else _ignore,
                 "callback_kwargs": keys or {}}
    if kind is not None and kind not in optparse.Option.TYPES:
        kind = "string"  # a type of yt-dlp's own: its value is checked where params are made
    return optparse.Option(
        *entry["short"], *entry["long"], action=action, dest=entry["dest"],
        type=kind if action in optparse.Option.TYPED_ACTIONS else None,
        nargs=entry["nargs"] if action in optparse.Option.TYPED_ACTIONS else None,
        choices=entry["choices"], metavar=entry["metavar"], help=entry["help"], **extra)


def build(table: dict[str, Any]) -> TableParser:
    parser = TableParser()
    for group in table["groups"]:
        container: Any = parser
        if group["title"] is not None:
            container = optparse.OptionGroup(parser, group["title"])
            parser.add_option_group(container)
        for entry in group["options"]:
            container.add_option(_option(entry))
    return parser


def _version_file() -> Path:
    spec = importlib.util.find_spec("yt_dlp")  # found, not imported
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("yt-dlp is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "version.py"


def _installed_version(path: Path) -> str:
    match = _VERSION.search(path.read_text(encoding="utf-8"))
    if match is None:
        raise RuntimeError(f"no __version__ in {path}")
    return match.group(1)


class _Tables:
    """The table of the installed yt-dlp, as a parser; one per process (``tables``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parsing = threading.Lock()
        self._folder: Path | None = None
        self._version_path: Path | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._version = ""
        self._parser: TableParser | None = None

    def keep_in(self, folder: Path) -> None:
        """Keep tables in ``folder`` (the config folder), across restarts."""
        with self._lock:
            self._folder = folder

    def version(self) -> str:
        """The installed yt-dlp's version (``yt_dlp.version.__version__``), as it is now."""
        with self._lock:
            self._follow()
            return self._version

    def parser(self) -> TableParser:
        """The parser of the installed yt-dlp's options (made at most once per version)."""
        with self._lock:
            self._follow()
            if self._parser is None:
                imported = "yt_dlp.options" in sys.modules  # no process, no file needed
                self._parser = build(made_here() if imported else self._stored())
            return self._parser

    def parse(self, args: list[str]) -> optparse.Values:
        """``args`` parsed by ``parser()``; OptParseError as yt-dlp's parser words it. One
        parse at a time: optparse keeps a parse's state on the parser, which threads share."""
        parser = self.parser()
        with self._parsing:
            return parser.parse_args(args)[0]

    def prepare(self) -> None:
        """Make the installed yt-dlp's table now, off any request's path, if it is not on
        disk (a first start, an update); it is read when first needed, not here."""
        try:
            with self._lock:
                self._follow()
                if self._folder is not None and not self._path().exists():
                    self._keep(self._make())
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            log.warning("yt-dlp's option table could not be made: %s", exc)

    def _follow(self) -> None:
        if "yt_dlp.version" in sys.modules:  # this process's yt-dlp: it cannot change
            if not self._version:
                self._version = sys.modules["yt_dlp.version"].__version__
            return
        if self._version_path is None:
            self._version_path = _version_file()
        info = os.stat(self._version_path)
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            self._stamp, self._version = stamp, _installed_version(self._version_path)
            self._parser = None

    def _path(self) -> Path:
        assert self._folder is not None
        return self._folder / FILE.format(version=self._version)

    def _stored(self) -> dict[str, Any]:
        """The table of ``self._version``: from the config folder, or made (and kept)."""
        if self._folder is not None:
            try:
                table = json.loads(self._path().read_text(encoding="utf-8"))
                if table.get("layout") == LAYOUT and table.get("version") == self._version:
                    return table
            except (OSError, ValueError):
                pass  # none yet, or unreadable: made again
        made = self._make()
        if self._folder is not None:
            self._keep(made)
        return json.loads(made)

    @staticmethod
    def _make() -> bytes:
        return subprocess.run(MAKE, capture_output=True, timeout=MAKE_TIMEOUT,
                              check=True).stdout

    def _keep(self, made: bytes) -> None:
        """``made`` as the table of ``self._version``, in place of any other version's."""
        path = self._path()
        for old in path.parent.glob(FILE.format(version="*")):
            old.unlink(missing_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_bytes(made)
        os.replace(temp, path)


tables = _Tables()


if __name__ == "__main__":
    sys.stdout.write(json.dumps(made_here()))
