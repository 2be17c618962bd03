"""The one option policy (``engine/options.py`` ``refusal``), table-driven: every option the
README and docs/API.md name, every option of a refused kind in yt-dlp's own table, in each
context, and the parsing around it (``parse_cli``, short clusters, templates, folders)."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.engine.options import (
    BLOCKED_DESTS,
    Context,
    _parser,
    check_template,
    convert,
    name_problem,
    option_value,
    parse_cli,
    refusal,
    resolve_folder,
    split_options,
    template_problem,
)
from appliance.errors import AppError

DOWNLOAD, PRESET, CONSOLE = Context.DOWNLOAD, Context.BUILTIN_PRESET, Context.CONSOLE
OUTSIDE = "runs programs or reads or writes files outside the download folder"
PRINTS = "prints information instead of downloading"
EVERYWHERE = (OUTSIDE, OUTSIDE, OUTSIDE)  # download, shipped preset, console


def _check(flag: str, value: str | None, context: Context) -> str | None:
    parser = _parser()
    name = parser._match_long_opt(flag) if flag.startswith("--") else \
        parser._short_opt[flag].get_opt_string()
    option = parser._long_opt[name]
    return refusal(name, option, value, context)


# Every option the README and docs/API.md name, with what each context answers.
REFUSED_EVERYWHERE = {
    "--exec": "rm -rf ~", "--exec-before-download": "x", "--config-locations": "/etc/x",
    "--batch-file": "/etc/passwd", "--cookies": "/etc/passwd", "--cookies-from-browser": "firefox",
    "--paths": "/tmp", "--load-info-json": "/tmp/x.json", "--ffmpeg-location": "/tmp/ff",
    "--external-downloader": "aria2c", "--downloader-args": "aria2c:-x", "--update": None,
    "--update-to": "nightly", "--js-runtimes": "node:/tmp/x", "--download-archive": "/tmp/a",
    "--print-to-file": "x",
}
NAMED = [(flag, value, *EVERYWHERE) for flag, value in REFUSED_EVERYWHERE.items()] + [
    # flag, value, download, shipped preset, console
    ("--postprocessor-args", "ffmpeg:-y", OUTSIDE, None, OUTSIDE),
    ("--help", None, OUTSIDE, OUTSIDE, None),
    ("--ignore-config", None, OUTSIDE, OUTSIDE, None),
    ("--alias", "x y", "defines new options", "defines new options", "defines new options"),
    ("--version", None, PRINTS, PRINTS, None),
    ("--list-extractors", None, PRINTS, PRINTS, None),
    ("--extractor-descriptions", None, PRINTS, PRINTS, None),
    # the --no- forms that switch a refused option off are safe everywhere
    ("--no-exec", None, None, None, None),
    ("--no-cookies", None, None, None, None),
    ("--no-config-locations", None, None, None, None),
    ("--no-update", None, None, None, None),
    # allowed options stay allowed
    ("--format", "bv*+ba/b", None, None, None),
    ("--proxy", "socks5://127.0.0.1:1080", None, None, None),
    ("--match-filters", "duration > 60", None, None, None),
    ("--output", "%(title)s.%(ext)s", None, None, None),
    ("--output", "/etc/%(title)s", "is an absolute path", "is an absolute path",
     "is an absolute path"),
    ("--output", "~/x.%(ext)s", "is an absolute path", "is an absolute path",
     "is an absolute path"),
    ("--output", "../%(title)s", "climbs out of the download folder with '..'",
     "climbs out of the download folder with '..'",
     "climbs out of the download folder with '..'"),
    ("--output", "-", "writes to standard output", "writes to standard output",
     "writes to standard output"),
    ("--output", "thumbnail:/tmp/x", "is an absolute path", "is an absolute path",
     "is an absolute path"),
    ("--output", "thumbnail:%(id)s", None, None, None),
    ("--output", "pl_video:../x", "climbs out of the download folder with '..'",
     "climbs out of the download folder with '..'",
     "climbs out of the download folder with '..'"),
    ("--output-na-placeholder", "NA", None, None, None),
    ("--output-na-placeholder", "..", "would become a path component other than a plain name",
     "would become a path component other than a plain name",
     "would become a path component other than a plain name"),
    ("--output-na-placeholder", "a/b",
     "would become a path component other than a plain name",
     "would become a path component other than a plain name",
     "would become a path component other than a plain name"),
]


@pytest.mark.parametrize(("flag", "value", "download", "preset", "console"), NAMED,
                         ids=[f"{row[0]}={row[1]}" for row in NAMED])
def test_named_options_in_every_context(flag: str, value: str | None, download: str | None,
                                        preset: str | None, console: str | None) -> None:
    assert _check(flag, value, DOWNLOAD) == download
    assert _check(flag, value, PRESET) == preset
    assert _check(flag, value, CONSOLE) == console


def _blocked_options() -> list[tuple[str, str]]:
    parser = _parser()
    return sorted({(option.get_opt_string(), option.dest) for option in
                   parser._get_all_options() if option.dest in BLOCKED_DESTS})


@pytest.mark.parametrize(("flag", "dest"), _blocked_options())
def test_every_option_of_a_refused_kind_in_ytdlp_table(flag: str, dest: str) -> None:
    option = _parser()._long_opt[flag]
    switch_off = flag.startswith("--no-") and not option.takes_value()
    value = None if not option.takes_value() else "x"
    for context in Context:
        excepted = (dest, context) in {("postprocessor_args", PRESET), ("print_help", CONSOLE),
                                       ("ignoreconfig", CONSOLE)}
        expected = None if switch_off or excepted else OUTSIDE
        assert refusal(flag, option, value, context) == expected, (flag, context)


def test_an_output_template_is_judged_on_each_of_its_types() -> None:
    assert _check("--output", "%(title", DOWNLOAD) is None  # yt-dlp says more when it runs
    assert _check("--output", "a\x00b", DOWNLOAD) == "contains a NUL character"
    assert _check("--output", "thumbnail:", DOWNLOAD) is None


# --- parse_cli: what is kept, removed, refused -------------------------------------------------


@pytest.mark.parametrize(("cli", "kept", "removed"), [
    ("", [], []),
    ("   ", [], []),
    ("--format best", ["--format", "best"], []),
    ("-f best --exec 'rm x' --no-exec", ["-f", "best", "--no-exec"], ["--exec"]),
    ("--cookies=/etc/passwd -x", ["-x"], ["--cookies"]),
    ("-xP/tmp", ["-x"], ["--paths"]),  # the cluster is checked letter by letter
    ("-xk", ["-x", "-k"], []),
    ("-P /tmp -f b", ["-f", "b"], ["--paths"]),
    ("--version --list-extractors", [], ["--version", "--list-extractors"]),
    ("--alias a b", [], ["--alias"]),
    ("-o /etc/x -o ok.%(ext)s", ["-o", "ok.%(ext)s"], ["--output"]),
])
def test_parse_cli_keeps_and_removes(cli: str, kept: list[str], removed: list[str]) -> None:
    options = parse_cli(cli)
    assert (options.args, options.removed, options.archive) == (kept, removed, None)


def test_a_shipped_preset_may_pass_ffmpeg_arguments() -> None:
    assert parse_cli("--ppa 'ffmpeg:-c copy'", context=PRESET).args == [
        "--ppa", "ffmpeg:-c copy"]
    assert parse_cli("--ppa 'ffmpeg:-c copy'").removed == ["--ppa"]  # as it was written


@pytest.mark.parametrize(("cli", "archive", "removed"), [
    ("--download-archive shows.txt", "shows.txt", []),
    ("--download-archive=shows-2.txt", "shows-2.txt", []),
    ("--download-archive /tmp/a.txt", None, ["--download-archive"]),
    ("--download-archive ../a.txt", None, ["--download-archive"]),
    ("--download-archive .hidden", None, ["--download-archive"]),
])
def test_an_archive_name_is_taken_a_path_is_refused(cli: str, archive: str | None,
                                                    removed: list[str]) -> None:
    options = parse_cli(cli)
    assert (options.archive, options.removed, options.args) == (archive, removed, [])


@pytest.mark.parametrize(("cli", "reason"), [
    ("--no-such-thing", "no such option: --no-such-thing"),
    ("-Z", "no such option: -Z"),
    ("--form best", "ambiguous option: --form"),
    ("https://example.com/v", "unexpected argument 'https://example.com/v'"),
    ("'unclosed", "No closing quotation"),
    ("--format", "--format option requires"),
    ("--no-mtime=1", "--no-mtime option does not take a value"),
    ("--retry-sleep", "--retry-sleep option requires"),
    ("--concurrent-fragments x", "invalid integer value: 'x'"),
    ("--sleep-requests x", "invalid floating-point value: 'x'"),
])
def test_options_that_do_not_parse_are_a_400_with_the_reason(cli: str, reason: str) -> None:
    with pytest.raises(AppError) as caught:
        parse_cli(cli)
    assert caught.value.code == "INVALID_REQUEST"
    assert reason.lower() in caught.value.message.lower()
    assert caught.value.message.startswith("Failed to parse command options for yt-dlp.")


@pytest.mark.parametrize(("cli", "reason"), [
    ("--x", "ambiguous option: --x"), ("--form best", "ambiguous option: --form"),
    ("--nope", "no such option: --nope"), ("-Q", "no such option: -Q"),
])
def test_unknown_options_are_named_exactly(cli: str, reason: str) -> None:
    with pytest.raises(AppError) as caught:
        parse_cli(cli)
    assert caught.value.message == f"Failed to parse command options for yt-dlp. '{reason}'."


def test_ytdlps_reason_is_given_without_its_usage_text() -> None:
    # A value's meaning is yt-dlp's to judge, where the params are made (a download process):
    # the option table passes it on, yt-dlp refuses it with its reason.
    assert parse_cli("--retries lots").args == ["--retries", "lots"]
    with pytest.raises(AppError) as caught:
        convert("--retries lots")
    assert caught.value.message == ("Failed to parse command options for yt-dlp. "
                                    "'invalid download retry count \"lots\" given'.")


def test_text_is_the_kept_options_quoted() -> None:
    assert parse_cli("-f 'bv*+ba' --exec x").text == "-f 'bv*+ba'"


# --- splitting ------------------------------------------------------------------------------


def test_split_options_groups_values_and_positionals() -> None:
    groups = split_options(["-f", "best", "--output=x.%(ext)s", "URL", "-xk"])
    assert [(name, tokens) for name, _option, tokens in groups] == [
        ("--format", ["-f", "best"]), ("--output", ["--output=x.%(ext)s"]), ("", ["URL"]),
        ("--extract-audio", ["-x"]), ("--keep-video", ["-k"])]
    assert groups[2][1] is None


def test_a_lone_dash_is_an_argument() -> None:
    assert [(n, t) for n, _o, t in split_options(["-"])] == [("", ["-"])]


def test_split_options_loose_lets_ytdlp_refuse_unknown_options() -> None:
    groups = split_options(["--nope", "-Z", "-xZk", "--", "--exec", "x"], strict=False)
    assert [(name, tokens) for name, _o, tokens in groups] == [
        ("", ["--nope"]), ("", ["-Z"]), ("--extract-audio", ["-x"]), ("", ["-Zk"]),
        ("", ["--"]), ("", ["--exec"]), ("", ["x"])]


def test_split_options_strict_refuses_a_double_dash_option_list_end() -> None:
    with pytest.raises(AppError):
        split_options(["--", "x"])


def test_a_short_cluster_with_its_value_attached_ends_there() -> None:
    groups = split_options(["-xP/tmp", "next"], strict=False)
    assert [(name, tokens) for name, _o, tokens in groups] == [
        ("--extract-audio", ["-x"]), ("--paths", ["-P", "/tmp"]), ("", ["next"])]


def test_a_short_cluster_with_a_separate_value() -> None:
    groups = split_options(["-xP", "/tmp", "rest"])
    assert [(name, tokens) for name, _o, tokens in groups] == [
        ("--extract-audio", ["-x"]), ("--paths", ["-P", "/tmp"]), ("", ["rest"])]


@pytest.mark.parametrize(("tokens", "value"), [
    (["-f", "best"], "best"), (["--format=best"], "best"), (["--format=a=b"], "a=b"),
    (["-x"], None), (["--print-to-file", "a", "b"], "b"),
])
def test_option_value(tokens: list[str], value: str | None) -> None:
    assert option_value(tokens) == value


# --- templates, names and folders -------------------------------------------------------------

EMPTY_FIRST = ("is an absolute path when its first fields are empty (yt-dlp's '%(field&{}/|)s' "
               "makes a folder only when there is a value)")



@pytest.mark.parametrize(("template", "problem"), [
    ("%(title)s.%(ext)s", None),
    ("shows/%(series)s/%(title)s.%(ext)s", None),
    ("a..b.%(ext)s", None),
    ("/abs", "is an absolute path"),
    ("\\\\server\\x", "is an absolute path"),
    ("~user/x", "is an absolute path"),
    ("a/../../x", "climbs out of the download folder with '..'"),
    ("a\\..\\x", "climbs out of the download folder with '..'"),
    (" - ", "writes to standard output"),
    ("x\x00y", "contains a NUL character"),
    # Fields that may all render as nothing, then "/": yt-dlp's join makes it absolute.
    ("%(playlist|)s/%(title)s.%(ext)s", EMPTY_FIRST),
    ("%(a|)s%(b&|)s/x", EMPTY_FIRST),
    ("%(a&)s\\x", EMPTY_FIRST),
    ("%(playlist&{}/|)s%(title)s.%(ext)s", None),  # yt-dlp's way: a folder only when present
    ("%(playlist|)s-%(title)s/x", None),
    ("%(playlist|NA)s/x", None),
    ("%(playlist)s/x", None),
    ("%%/x", None),
    ("%(title|)s", None),
])
def test_template_problem(template: str, problem: str | None) -> None:
    assert template_problem(template) == problem


@pytest.mark.parametrize(("value", "unsafe"), [
    ("NA", False), ("n.a.", False), (".", True), (" .. ", True), ("a/b", True),
    ("a\x00", True),
])
def test_name_problem(value: str, unsafe: bool) -> None:
    assert (name_problem(value) is not None) == unsafe


def test_check_template_strips_and_refuses() -> None:
    assert check_template("  %(id)s.%(ext)s ") == "%(id)s.%(ext)s"
    assert check_template("") == ""
    with pytest.raises(AppError, match="must stay inside the download folder: it is an "
                                       "absolute path"):
        check_template("/etc/x")


@pytest.mark.parametrize(("folder", "inside"), [
    ("", ""), ("shows", "shows"), ("shows/s1", "shows/s1"), ("a\\b", "a/b"), ("./x", "x"),
    ("  ", ""),
])
def test_resolve_folder_inside(tmp_path: Path, folder: str, inside: str) -> None:
    assert resolve_folder(tmp_path, folder) == (tmp_path / inside if inside else tmp_path)


@pytest.mark.parametrize("folder", ["/etc", "../x", "a/../../x", "a/../b", "~", "~/x",
                                    "a\\..\\..\\x"])
def test_resolve_folder_refuses_escapes(tmp_path: Path, folder: str) -> None:
    with pytest.raises(AppError) as caught:
        resolve_folder(tmp_path, folder)
    assert caught.value.message == (f"folder '{folder.replace(chr(92), '/')}' must be a path "
                                    "inside the download folder.")


def test_resolve_folder_refuses_nul(tmp_path: Path) -> None:
    with pytest.raises(AppError) as caught:
        resolve_folder(tmp_path, "a\x00b")
    assert caught.value.message == "folder must not contain NUL characters."


# --- convert ----------------------------------------------------------------------------------


def test_convert_shows_only_what_the_options_change() -> None:
    result = convert("-f best -o '%(id)s.%(ext)s' --exec x")
    assert result["opts"]["format"] == "best"
    assert set(result["opts"]) <= {"format", "_warnings"}  # yt-dlp's own advice may come
    assert result["output_template"] == "%(id)s.%(ext)s"
    assert result["download_path"] is None
    assert result["removed_options"] == ["--exec"]
    assert "removed_options" not in convert("-f best")
