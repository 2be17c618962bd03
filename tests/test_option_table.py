"""yt-dlp's option table without yt-dlp (``engine/option_table.py``): the service's worker checks
options on it and never imports yt-dlp; the table is yt-dlp's own, follows the installed
version, and what it cannot judge (a value's meaning) yt-dlp still refuses, on the item."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from support.origin import MediaOrigin
from support.server import Server
from yt_dlp.options import create_parser

from appliance.engine import option_table
from appliance.engine.option_table import FILE, LAYOUT, _Tables, build, made_here
from appliance.engine.options import parse_cli
from appliance.errors import AppError


def _shape(parser: object) -> list[tuple]:
    return sorted(
        (o.get_opt_string(), tuple(o._short_opts), tuple(o._long_opts), o.dest, o.takes_value(),
         o.nargs if o.takes_value() else None, o.type if o.takes_value() else None,
         tuple(o.choices or ()))
        for o in parser._get_all_options())  # type: ignore[attr-defined]


def test_the_table_rebuilds_ytdlps_parser_option_for_option() -> None:
    live = create_parser()  # yt-dlp imported on purpose: the table is checked against it
    table = made_here()
    assert json.loads(json.dumps(table)) == table  # what the file holds is what was made
    rebuilt = build(table)
    assert _shape(rebuilt) == _shape(live)
    assert [g.title for g in rebuilt.option_groups] == [g.title for g in live.option_groups]
    for flag in ("--form", "--no-mt", "--outp", "--format-so"):  # abbreviations
        try:
            expected = live._match_long_opt(flag)
        except Exception as exc:
            with pytest.raises(type(exc)):
                rebuilt._match_long_opt(flag)
        else:
            assert rebuilt._match_long_opt(flag) == expected
    for value in ("%(id)s", "thumbnail:%(id)s", "pl_video,chapter:x/%(id)s", "Thumbnail:x",
                  "nope:%(id)s"):
        assert rebuilt.parse_args(["-o", value])[0].outtmpl == \
            live.parse_args(["-o", value])[0].outtmpl
        assert rebuilt.parse_args(["-P", value])[0].paths == \
            live.parse_args(["-P", value])[0].paths


def test_a_table_holds_its_layout_and_a_type_of_ytdlps_own_reads_as_text() -> None:
    """The layout names what a kept file holds (another one is made again); a value of a type
    optparse does not know (a future yt-dlp's) is taken as text, for yt-dlp to judge."""
    assert made_here()["layout"] == LAYOUT
    option = {"short": [], "long": ["--when"], "dest": "when", "action": "store",
              "type": "datetime", "nargs": 1, "choices": None, "metavar": "WHEN", "help": "",
              "dict_keys": None}
    parser = build({"groups": [{"title": None, "options": [option]}]})
    assert parser.parse_args(["--when", "today"])[0].when == "today"


def test_the_installed_versions_table_is_kept_in_place_of_others(tmp_path: Path) -> None:
    old = tmp_path / FILE.format(version="2020.01.01")
    old.write_text("{}")
    kept = _Tables()
    kept.keep_in(tmp_path)
    kept.prepare()  # made by a process of its own, off any request's path
    [table] = tmp_path.iterdir()
    assert table.name == FILE.format(version=kept.version())
    assert json.loads(table.read_text())["version"] == kept.version()
    # a fresh one's parser, made once and kept
    parser = kept.parser()
    assert parser is kept.parser() and parser.get_option("--format").dest == "format"



def test_a_table_that_cannot_be_made_is_said_and_nothing_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # the process that reads the table fails half-way (a broken yt-dlp after an update)
    monkeypatch.setattr(option_table, "MAKE", [sys.executable, "-c",
                                               "import sys; print('{\"lay'); sys.exit(1)"])
    caplog.set_level(logging.WARNING, logger="appliance.engine.option_table")
    tables = _Tables()
    tables.keep_in(tmp_path)
    tables.prepare()
    assert list(tmp_path.iterdir()) == []
    assert "yt-dlp's option table could not be made" in caplog.text


# The worker's code, in an interpreter of its own that never imported yt-dlp: the API app on a
# started runtime, and every request that checks yt-dlp options, good and hostile.
WORKER = textwrap.dedent("""
    import json, sys
    import falcon.testing
    from appliance.api.app import create_app
    from appliance.config import load_settings
    from appliance.runtime import Runtime

    root = sys.argv[1]
    rt = Runtime(load_settings({
        "YTP_CONFIG_PATH": root + "/config", "YTP_DOWNLOAD_PATH": root + "/downloads",
        "YTP_TEMP_PATH": root + "/tmp", "YTP_YTDLP_INDEX_URL": "http://127.0.0.1:9/simple",
        "YTP_CONSOLE_ENABLED": "true", "YTP_ALLOWED_HOSTS": "falconframework.org"}),
        websocket=False)
    rt.start()
    client = falcon.testing.TestClient(create_app(rt))
    url = "http://127.0.0.1:9/v.mp4"
    requests = [
        ("/api/history", {"url": url, "cli": "--no-mtime", "auto_start": False}),
        ("/api/history", {"url": url, "cli": "-f 'bv*+ba' --exec x -P sub", "auto_start": False}),
        ("/api/presets", {"name": "music",
                          "cli": "-x --audio-format mp3 -o '%(title)s.%(ext)s' -P sub"}),
        ("/api/tasks", {"name": "News", "url": url, "cli": "--write-subs --sub-langs en"}),
        ("/api/conditions", {"name": "c", "filter": "title *= live & filesize > 1.5M",
                             "cli": "--write-info-json"}),
        ("/api/dl_fields", {"name": "Subs", "field": "--embed-subs", "kind": "bool"}),
        ("/api/history", {"url": url, "cli": "'unclosed"}),
        ("/api/history", {"url": url, "cli": "--nope"}),
        ("/api/history", {"url": url, "cli": "--format"}),
        ("/api/history", {"url": url, "cli": "-x" * 50000}),
        ("/api/presets", {"name": "bad", "cli": "--exec ls"}),
        ("/api/presets", {"name": "bad", "cli": "-o ../x"}),
        ("/api/presets", {"name": "bad", "cli": "--config-locations /etc/x"}),
        ("/api/presets", {"name": "bad", "cli": "--batch-file /etc/passwd"}),
        ("/api/tasks", {"name": "bad", "url": url, "cli": "--paths /tmp"}),
        ("/api/conditions", {"name": "bad", "filter": "is_live", "cli": "--alias a b"}),
        ("/api/presets", {"name": "bad", "cli": "-x --retries lots"}),
        ("/api/tasks", {"name": "bad", "url": url, "cli": "--retries lots"}),
        ("/api/conditions", {"name": "bad", "filter": "is_live", "cli": "--retries lots"}),
        ("/api/system/terminal", {"command": "--exec ls --batch-file /etc/passwd"}),
        ("/api/yt-dlp/command", {"url": url, "cli": "--no-mtime -f best"}),
    ]
    answers = []
    for path, body in requests:
        response = client.simulate_post(path, json=body)
        answers.append([path, response.status_code, response.json])
    for path in ("/api/yt-dlp/options", "/api/system/configuration",
                 "/api/history/" + answers[1][2][0]["id"]):
        response = client.simulate_get(path)
        answers.append([path, response.status_code, response.json])
    # No download process to be had from here on: a save that leaves cli alone needs none,
    # one that changes it is a 503 at once, never a wait.
    rt.engine.pool.close()
    patches = [
        ("/api/presets/%d" % answers[2][2]["id"], {"description": "kept"}),
        ("/api/tasks/%d" % answers[3][2]["id"], {"name": "News 2"}),
        ("/api/conditions/%d" % answers[4][2]["id"], {"priority": 3}),
        ("/api/presets/%d" % answers[2][2]["id"], {"cli": "--no-mtime"}),
    ]
    for path, body in patches:
        response = client.simulate_patch(path, json=body)
        answers.append([path, response.status_code, response.json])
    rt.stop()
    loaded = sorted(m for m in sys.modules if m == "yt_dlp" or m.startswith("yt_dlp."))
    print(json.dumps({"answers": answers, "yt_dlp": loaded}))
""")


def test_the_worker_checks_options_without_importing_ytdlp(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", WORKER, str(tmp_path)], capture_output=True,
                          text=True, timeout=120, check=True)
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["yt_dlp"] == []
    statuses = [status for _path, status, _body in report["answers"]]
    assert statuses[:6] == [200, 200, 200, 200, 200, 200], report["answers"][:6]
    assert statuses[6:20] == [400] * 14, report["answers"][6:20]
    assert statuses[20:] == [200] * 7 + [503], report["answers"][20:]
    errors = [body["error"] for _path, _status, body in report["answers"][6:20]]
    assert errors[:3] == [
        "Failed to parse command options for yt-dlp. 'No closing quotation'.",
        "Failed to parse command options for yt-dlp. 'no such option: --nope'.",
        "Failed to parse command options for yt-dlp. '--format option requires 1 argument'."]
    assert "not allowed in a preset: --exec" in errors[4]
    assert all("not allowed" in error for error in errors[5:10] + errors[13:])
    # what only yt-dlp judges, a value's meaning, refuses a save (never an add: the item fails)
    assert errors[10:13] == ["Failed to parse command options for yt-dlp. "
                             "'invalid download retry count \"lots\" given'."] * 3
    assert report["answers"][19][2]["blocked_options"] == ["--exec", "--batch-file"]
    assert "--no-mtime -f best" in report["answers"][20][2]["command"]
    kept = report["answers"][23][2]
    assert kept["cli"] == "-f 'bv*+ba'" and kept["folder"] == "sub"
    assert report["answers"][22][2]["app"]["ytdlp_version"] == made_here()["version"]
    music = report["answers"][2][2]
    assert music["folder"] == "sub" and "-P" not in music["cli"]
    patched = [body for _path, _status, body in report["answers"][24:27]]
    assert (patched[0]["description"], patched[1]["name"], patched[2]["priority"]) == \
        ("kept", "News 2", 3)
    assert report["answers"][27][2]["error"].startswith("yt-dlp could not check the options")
    # the table was made once, for the installed version, and kept in the config folder
    version = made_here()["version"]
    table = json.loads((tmp_path / "config" / FILE.format(version=version)).read_text())
    assert table["version"] == version


# A yt-dlp of its own first on the path, never imported: its version.py says which table is
# the installed one's. Each version is installed as pip does (the file replaced, not edited).
FOLLOW = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    site, config = Path(sys.argv[1]), Path(sys.argv[2])
    sys.path.insert(0, str(site))
    from appliance.engine.option_table import tables
    tables.keep_in(config)
    seen = []
    for version in sys.argv[3:]:
        path = site / "yt_dlp" / "version.py"
        path.with_suffix(".new").write_text(f"__version__ = '{version}'\\n")
        os.replace(path.with_suffix(".new"), path)
        seen.append([tables.version(), sorted(tables.parser()._long_opt)])
    print(json.dumps({"seen": seen, "yt_dlp": "yt_dlp" in sys.modules}))
""")


def test_the_table_follows_an_update_in_place(tmp_path: Path) -> None:
    site, config = tmp_path / "site", tmp_path / "config"
    (site / "yt_dlp").mkdir(parents=True)
    config.mkdir()
    (site / "yt_dlp" / "__init__.py").write_text("raise ImportError('never imported')\n")
    option = {"short": [], "action": "store_true", "type": None, "nargs": None,
              "choices": None, "metavar": None, "help": "", "dict_keys": None}
    versions = {"2030.01.01": "--old-flag", "2031.02.02": "--new-flag"}
    for version, flag in versions.items():  # as the service kept them
        (config / FILE.format(version=version)).write_text(json.dumps({
            "layout": 1, "version": version, "groups": [{"title": "General", "options": [
                {**option, "long": [flag], "dest": flag[2:]}]}]}))
    done = subprocess.run([sys.executable, "-c", FOLLOW, str(site), str(config), *versions],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"yt_dlp": False, "seen": [
        ["2030.01.01", ["--old-flag"]], ["2031.02.02", ["--new-flag"]]]}


def test_a_value_ytdlp_refuses_fails_the_item_with_its_reason(
        make_server: Callable[..., Server], origin: MediaOrigin) -> None:
    server = make_server()
    [item] = server.post("/api/history", {"url": origin.clip_url,
                                          "cli": "--retries lots"}).json()
    assert item["status"] == "queued"  # the table does not judge what a value means
    failed = server.wait_status(item["id"], {"finished", "error"})
    assert failed["status"] == "error"
    assert failed["error"] == ("Failed to parse command options for yt-dlp. "
                               "'invalid download retry count \"lots\" given'.")


@pytest.mark.parametrize(("cli", "refused"), [
    ("-u me", "--username"), ("--username=me -f best", "--username"),
    ("--ap-username me -u x -p y", "--ap-username")])
def test_a_user_name_without_its_password_is_refused(cli: str, refused: str) -> None:
    # yt-dlp would ask for the password on a terminal (a download process has none)
    with pytest.raises(AppError) as caught:
        parse_cli(cli)
    assert caught.value.message == ("Failed to parse command options for yt-dlp. "
                                    f"'{refused} is given without its password: yt-dlp would "
                                    "ask for it on a terminal'.")
    assert parse_cli("-u me -p secret").args == ["-u", "me", "-p", "secret"]
