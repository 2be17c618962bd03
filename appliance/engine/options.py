"""yt-dlp command options: split and checked on yt-dlp's own option table, stripped of what is
unsafe.

The table is yt-dlp's parser's, read without importing yt-dlp here (``option_table``: the
service's worker stays ~9 MB smaller): the same names, value counts and types, so the same
splits, refusals and optparse errors. The options that survive are passed to the download
process as an argv list; that process turns them into YoutubeDL params with
``yt_dlp.parse_options`` (``ytdlp_tuning.parsed_options``), which also says what yt-dlp finds
wrong with the values themselves (``--retries lots``): there is one parser, yt-dlp's.

Owner of the option policy: ``refusal``. Downloads, presets, download fields, the console and
the options list all ask it; nothing else decides whether an option is allowed.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import optparse
import os
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import AppError, invalid
from ..path_limits import NAME_MAX, byte_length, too_long
from ..patterns import PatternError, compile_pattern
from .option_table import tables

# Options that run programs, read or write files outside the download folder, or replace what
# the appliance controls (paths, cookies, archive). Refused everywhere (downloads, presets,
# download fields, the console), except where POLICY_EXCEPTIONS says.
BLOCKED_DESTS = frozenset({
    "exec_cmd", "exec_before_dl_cmd", "config_locations", "batchfile", "load_info_filename",
    "cookiefile", "cookiesfrombrowser", "paths", "netrc_location", "netrc_cmd", "plugin_dirs",
    "update_self", "external_downloader", "external_downloader_args", "postprocessor_args",
    "ffmpeg_location", "cachedir", "rm_cachedir", "download_archive", "print_to_file",
    "client_certificate", "client_certificate_key", "enable_file_urls", "load_pages",
    "write_pages", "add_postprocessors", "ignoreconfig", "print_help", "js_runtimes",
})
# Information flags: they make yt-dlp print and stop, which a download must not do.
INFO_FLAGS = frozenset({"--version", "--list-extractors", "--extractor-descriptions"})
# Defines new options: a way around every check here.
ALIAS_FLAG = "--alias"
# Options whose value is a path-shaped name: checked by value, not refused outright.
NAMED_PATH_DESTS = frozenset({"outtmpl", "outtmpl_na_placeholder"})
# The fields of an item's info that hold where its files are: the download's path, which the
# job reports as the item's file, and yt-dlp's private ones ("_filename", "__finaldir",
# "__files_to_move"): --parse-metadata, --replace-in-metadata and a download field that names
# a metadata field may not set them.
PATH_FIELDS = frozenset({"filepath", "filename"})


class Context(enum.Enum):
    """Who passes the options: the policy differs only where this says."""

    DOWNLOAD = "download"  # an item's, a preset's or a download field's options
    BUILTIN_PRESET = "builtin preset"  # the shipped presets: ffmpeg arguments are ours
    CONSOLE = "console"  # POST /api/system/terminal: information flags are its purpose


# (dest, context) pairs allowed despite BLOCKED_DESTS; and flags allowed in a context.
POLICY_EXCEPTIONS = frozenset({
    ("postprocessor_args", Context.BUILTIN_PRESET),
    ("print_help", Context.CONSOLE),
    ("ignoreconfig", Context.CONSOLE),  # the console always ignores configuration anyway
})
# A user name without its password makes yt-dlp ask for it on a terminal, which a download
# process has not (its stdin may be its command pipe): (user dest, password dest, option).
PASSWORD_PROMPTS = (("username", "password", "--username"),
                    ("ap_username", "ap_password", "--ap-username"))
FAILURE = "Failed to parse command options for yt-dlp. '{}'."
ARCHIVE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
# An output template's field (``%(title)s``, ``%(upload_date>%Y|0)s``, ``%(id)05d``) as
# yt-dlp reads one, or its escaped "%%"; what is left is the template's fixed text.
TEMPLATE_FIELD = re.compile(
    r"%%|%\([^)]*\)[#0\-+ ]*\d*(?:\.\d+)?[hlL]?[diouxXeEfFgGcrsaljhqBUDS]")


def refusal(name: str, option: Any, value: str | None, context: Context) -> str | None:
    """Why option ``name`` (with ``value``, None when it takes none or is not known yet) is
    refused in ``context``; None when it is allowed. The one option policy of the service:
    downloads, presets, download fields, the console and the options list all ask here.

    Output templates are checked here on their text, for a clear answer at once; the final
    word is the download process's, on the rendered path (``engine/containment.py``).
    """
    if name == ALIAS_FLAG:
        return "defines new options"
    if name in INFO_FLAGS:
        return None if context is Context.CONSOLE else "prints information instead of downloading"
    if option.dest in BLOCKED_DESTS and (option.dest, context) not in POLICY_EXCEPTIONS:
        if name.startswith("--no-") and not option.takes_value():
            return None  # --no-exec, --no-cookies: back to the default, which is safe
        return "runs programs or reads or writes files outside the download folder"
    if option.dest == "outtmpl" and value is not None:
        return _outtmpl_problem(value)
    if option.dest == "outtmpl_na_placeholder" and value is not None:
        return name_problem(value)
    return None


def _outtmpl_problem(value: str) -> str | None:
    # "TYPES:TEMPLATE" exactly as yt-dlp splits it (only on its known output types)
    templates = tables.parse(["--output", value]).outtmpl
    for template in templates.values():
        if problem := template_problem(template) or template_length_problem(template):
            return problem
    return None


def template_problem(template: str) -> str | None:
    """Why an output template's text would leave the download folder; None when it stays."""
    if "\x00" in template:
        return "contains a NUL character"
    if template.strip() == "-":
        return "writes to standard output"
    path = PurePosixPath(template.replace("\\", "/"))
    if path.is_absolute() or template.startswith("~"):
        return "is an absolute path"
    if ".." in path.parts:
        return "climbs out of the download folder with '..'"
    if _may_start_at_root(template.replace("\\", "/")):
        return ("is an absolute path when its first fields are empty (yt-dlp's "
                "'%(field&{}/|)s' makes a folder only when there is a value)")
    return None


def _may_start_at_root(template: str) -> bool:
    """Whether ``template`` begins with fields that may all render as nothing, then "/":
    yt-dlp joins such a name to the download folder as an absolute path (the download
    would be refused then; said here, when the template is given)."""
    position = 0
    for field in TEMPLATE_FIELD.finditer(template):
        if position < field.start():
            return template[position:field.start()].startswith("/")
        if field[0] == "%%" or not _renders_empty(field[0]):
            return False
        position = field.end()
    return position > 0 and template[position:].startswith("/")


def _renders_empty(field: str) -> bool:
    """Whether a template field may render as nothing: an empty default (``%(x|)s``) or an
    empty replacement (``%(x&|)s``); a missing value is the N/A placeholder otherwise."""
    inner = field[2:field.rindex(")")]
    before, bar, default = inner.partition("|")
    return bool(bar and not default) or ("&" in before and not before.partition("&")[2])


# One part of a --match-filters value, read exactly as yt-dlp's utils._match_one reads it.
_FILTER_OPERATORS = ("*=", "^=", "$=", "~=", "<=", "<", ">=", ">", "=")
_FILTER_COMPARISON = re.compile(r"""(?x)
    (?P<key>[a-z_]+)
    \s*(?P<negation>!\s*)?(?P<op>{})(?P<none_inclusive>\s*\?)?\s*
    (?:
        (?P<quote>["\'])(?P<quotedstrval>.+?)(?P=quote)|
        (?P<strval>.+?)
    )
    """.format("|".join(map(re.escape, _FILTER_OPERATORS))))
_FILTER_PRESENCE = re.compile(r"(?:!)?\s*[a-z_]+")


def filter_problem(value: str, *, interactive: bool = False) -> str | None:
    """Why yt-dlp would fail on a --match-filters / --break-match-filters value only when it
    filters a video (it reads the value then, not when it starts): a part it cannot read, or
    a "~=" expression that is no regular expression or one the service refuses to run
    (``patterns.compile_pattern``); and "-", which asks on a terminal, unless one is there."""
    if value == "-":
        return None if interactive else "asks on a terminal ('-'), which a download has not"
    for part in re.split(r"(?<!\\)&", value):
        part = part.replace("\\&", "&").strip()
        if _FILTER_PRESENCE.fullmatch(part):
            continue
        match = _FILTER_COMPARISON.fullmatch(part)
        if match is None:
            return f"has a part yt-dlp cannot read as a filter: {part[:100]!r}"
        if match["op"] != "~=":
            continue
        pattern = match["quotedstrval"] or match["strval"]
        if match["quote"]:
            pattern = pattern.replace("\\" + match["quote"], match["quote"])
        try:
            compile_pattern(pattern)
            re.compile(pattern)  # what yt-dlp runs it with
        except PatternError as exc:
            return f"has {pattern[:100]!r}, which is not accepted: {exc.message}"
        except (re.error, RecursionError, OverflowError, ValueError) as exc:
            return f"has {pattern[:100]!r}, an invalid regular expression ({exc})"
    return None


def _values_problem(values: Any, context: Context) -> str | None:
    """The option values yt-dlp reads only later, checked now: a preset is saved once and
    then fails every item."""
    for name, dest in (("--match-filters", "match_filter"),
                       ("--break-match-filters", "breaking_match_filter")):
        for value in getattr(values, dest, None) or []:
            if problem := filter_problem(value, interactive=context is Context.CONSOLE):
                return f"{name} {value[:200]!r} {problem}"
    for name, dest in (("--match-title", "matchtitle"), ("--reject-title", "rejecttitle")):
        if (pattern := getattr(values, dest, None)) is not None:
            try:
                compile_pattern(pattern)
                re.compile(pattern)
            except PatternError as exc:
                return f"{name} {pattern[:200]!r} is not accepted: {exc.message}"
            except (re.error, RecursionError, OverflowError, ValueError) as exc:
                return f"{name} {pattern[:200]!r} is an invalid regular expression ({exc})"
    return None


def template_length_problem(template: str) -> str | None:
    """Why a template could name no file: a folder or file name whose fixed text alone is
    longer than a name may be (every download failed "File name too long"); None otherwise.
    Fields count for nothing here, so what a site's title adds is the download's to meet."""
    fixed = TEMPLATE_FIELD.sub(lambda match: "%" if match[0] == "%%" else "", template)
    longest = max(fixed.split("/"), key=byte_length)
    if (size := byte_length(longest)) > NAME_MAX:
        return (f"has a name of {size} bytes in its fixed text ('{longest[:40]}…'), longer than "
                f"the {NAME_MAX} bytes a file or folder name may have")
    return None


def name_problem(value: str) -> str | None:
    """Why a value that becomes one path component (the N/A placeholder) is unsafe."""
    if value.strip() in {".", ".."} or "/" in value or "\x00" in value:
        return "would become a path component other than a plain name"
    return None


@dataclasses.dataclass(frozen=True)
class CliOptions:
    args: list[str]
    removed: list[str]
    # ``--download-archive NAME``: the engine keeps archives itself, in the config folder.
    archive: str | None = None
    # ``-P PATH`` (or ``home:PATH``) naming a folder inside the download folder: taken as the
    # item's folder, never passed to yt-dlp (the download process sets the paths itself).
    folder: str | None = None

    @property
    def text(self) -> str:
        return shlex.join(self.args)


def _parser() -> optparse.OptionParser:
    return tables.parser()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.rsplit("error: ", 1)[-1].strip() if "error: " in text else text


def failure_text(exc: BaseException) -> str:
    """The answer's text for options yt-dlp's parser refused with ``exc``."""
    return FAILURE.format(_reason(exc) if isinstance(exc, optparse.OptParseError) else exc)


def parse_failure(reason: str) -> Exception:
    return invalid(FAILURE.format(reason))


Group = tuple[str, Any, list[str]]


def split_options(argv: list[str], *, strict: bool = True) -> list[Group]:
    """Group argv into (option string, Option, tokens) using yt-dlp's option table.

    Positional arguments come as ("", None, [token]). ``strict`` refuses unknown options with
    yt-dlp's reason; otherwise they pass as positionals (for a caller that lets yt-dlp itself
    refuse them), and ``--`` ends the options.
    """
    parser = _parser()
    groups: list[Group] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--" and not strict:
            groups += [("", None, [rest]) for rest in argv[i:]]
            break
        if token.startswith("--") and len(token) > 2:
            i += _split_long(parser, argv, i, groups, strict)
        elif token.startswith("-") and len(token) > 1:
            i += _split_short(parser, argv, i, groups, strict)
        else:
            groups.append(("", None, [token]))
            i += 1
    return groups


def _split_long(parser: Any, argv: list[str], i: int, groups: list[Group],
                strict: bool) -> int:
    token = argv[i]
    name, has_value, _ = token.partition("=")
    try:
        name = parser._match_long_opt(name)
    except (optparse.BadOptionError, optparse.AmbiguousOptionError) as exc:
        if not strict:
            groups.append(("", None, [token]))
            return 1
        # AmbiguousOptionError is a kind of BadOptionError: ask for it first
        kind = "ambiguous" if isinstance(exc, optparse.AmbiguousOptionError) else "no such"
        raise parse_failure(f"{kind} option: {exc.opt_str}") from None
    option = parser._long_opt[name]
    # As optparse reads it: "--opt=V" gives the first of its values, the next words the rest
    # (--replace-in-metadata=title takes two more, whatever they look like: read as options
    # here, they hid an --exec in what yt-dlp took as a value).
    more = (option.nargs - bool(has_value)) if option.takes_value() else 0
    tokens = argv[i : i + 1 + more]
    groups.append((name, option, tokens))
    return len(tokens)


def _split_short(parser: Any, argv: list[str], i: int, groups: list[Group],
                 strict: bool) -> int:
    """A short-option token, which may be a cluster (``-xk``) ending in one that takes a
    value (``-xP/tmp``): every option in it is grouped, so each is checked. Returns how many
    argv tokens were used."""
    token = argv[i]
    for pos in range(1, len(token)):
        flag = "-" + token[pos]
        option = parser._short_opt.get(flag)
        if option is None:
            if not strict:  # the rest passes on as it is, and yt-dlp refuses it itself
                groups.append(("", None, ["-" + token[pos:]]))
                return 1
            raise parse_failure(f"no such option: {flag}")
        if not option.takes_value():
            groups.append((option.get_opt_string(), option, [flag]))
            continue
        # the rest of the token, if any, is its first value (as for "--opt=V" above)
        rest = [token[pos + 1:]] if pos + 1 < len(token) else []
        values = argv[i + 1 : i + 1 + option.nargs - len(rest)]
        groups.append((option.get_opt_string(), option, [flag, *rest, *values]))
        return 1 + len(values)
    return 1


def option_value(tokens: list[str]) -> str | None:
    if len(tokens) > 1:
        return tokens[-1]
    return tokens[0].split("=", 1)[1] if "=" in tokens[0] else None


def paths_folder(value: str | None) -> str | None:
    """The folder ``-P VALUE`` names when it is a relative path inside the download folder
    (the home path, without a type or as ``home:``); None for anything else, which stays
    refused with the rest of ``--paths``."""
    if value is None:
        return None
    try:
        paths = tables.parse(["--paths", value]).paths
    except optparse.OptParseError:
        return None
    home = paths.get("home") if set(paths) == {"home"} else None
    if not home or "\x00" in home or home.startswith("~"):
        return None
    path = PurePosixPath(home.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        return None
    return str(path)


def parse_cli(cli: str, *, context: Context = Context.DOWNLOAD) -> CliOptions:
    """Parse ``cli`` as yt-dlp would; return the argv the policy allows and the options it
    removed. Raises AppError (400) with yt-dlp's reason when the options do not parse.
    """
    if not cli.strip():
        return CliOptions([], [])
    try:
        argv = shlex.split(cli)
    except ValueError as exc:
        raise parse_failure(str(exc)) from None
    kept: list[str] = []
    removed: list[str] = []
    archive = folder = None
    for name, option, tokens in split_options(argv):
        if option is None:
            raise parse_failure(f"unexpected argument {tokens[0]!r}; URLs are not options")
        value = option_value(tokens)
        if option.dest == "download_archive" and value is not None \
                and ARCHIVE_NAME.match(value):
            archive = value
            continue
        if option.dest == "paths" and (inside := paths_folder(value)):
            folder = inside
            continue
        if refusal(name, option, value, context) is not None:
            removed.append(name)
        else:
            kept.extend(tokens)
    try:  # what optparse checks (values' count and type, choices), as yt-dlp's parser would
        values = tables.parse(kept)
    except optparse.OptParseError as exc:
        raise parse_failure(_reason(exc)) from None
    if problem := _values_problem(values, context):
        raise parse_failure(problem)
    for user, password, name in PASSWORD_PROMPTS:
        if getattr(values, user, None) is not None and getattr(values, password, None) is None:
            raise parse_failure(f"{name} is given without its password: yt-dlp would ask for "
                                "it on a terminal")
    return CliOptions(kept, removed, archive, folder)


def convert(cli: str) -> dict[str, Any]:
    """``POST /api/yt-dlp/convert``: the YoutubeDL params the options give. They are
    yt-dlp's to make: this runs where yt-dlp is imported, a download process
    (``convert_answer``)."""
    from yt_dlp.utils import DownloadError

    from .ytdlp_tuning import parsed_options

    options = parse_cli(cli)
    try:
        params = _jsonable(parsed_options(tuple(options.args)))
    except DownloadError as exc:  # yt-dlp refused a value (failure_text)
        raise invalid(str(exc)) from None
    defaults = _default_params()
    outtmpl = params.pop("outtmpl", {}) or {}
    result: dict[str, Any] = {
        # Only what the options change: the defaults are yt-dlp's business, not the user's.
        "opts": {k: v for k, v in params.items() if k not in defaults or defaults[k] != v},
        "output_template": outtmpl.get("default"),
        # -P inside the download folder, relative to it (a -P that escapes was removed).
        "download_path": options.folder,
    }
    if options.removed:
        result["removed_options"] = options.removed
    return result


def convert_answer(cli: str) -> dict[str, Any]:
    """``convert`` as a download process answers the service (``engine.call``): a refusal
    comes back as its text, for the service to answer 400 with."""
    try:
        return {"params": convert(cli)}
    except AppError as exc:
        return {"error": exc.message}


@functools.cache
def _default_params() -> dict[str, Any]:
    from .ytdlp_tuning import parsed_options

    return _jsonable(parsed_options(()))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def resolve_folder(download_path: Path, folder: str) -> Path:
    """The absolute folder for ``folder`` (relative to the download path), refusing escapes."""
    folder = (folder or "").strip().replace("\\", "/")
    if "\x00" in folder:
        raise invalid("folder must not contain NUL characters.")
    candidate = PurePosixPath(folder)
    if candidate.is_absolute() or ".." in candidate.parts or folder.startswith("~"):
        raise invalid(f"folder '{folder}' must be a path inside the download folder.")
    target = Path(os.path.normpath(download_path / candidate))
    if not target.is_relative_to(download_path):
        raise invalid(f"folder '{folder}' must be a path inside the download folder.")
    if problem := too_long(str(target), candidate.parts):
        raise invalid(f"folder '{folder[:100]}' {problem}: no file could be written there.")
    return target


def check_template(template: str) -> str:
    template = (template or "").strip()
    if template and (problem := template_problem(template)):
        raise invalid(f"template '{template}' must stay inside the download folder: it "
                      f"{problem}.")
    if template and (problem := template_length_problem(template)):
        raise invalid(f"template '{template[:100]}' {problem}: shorten it.")
    return template
