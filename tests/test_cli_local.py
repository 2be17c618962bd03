"""The ``appliance`` command's local commands with ``main()`` in the test process (the
subprocess tests of them judge no mutant): ``db backup|restore``, ``service install`` with
its ``--venv``, ``ytdlp status`` with no service running, ``daemon start``'s words, and a
reader that goes early."""

from __future__ import annotations

import io
import os
import socket
import sqlite3
import sys
from pathlib import Path

import pytest
from support.commands import isolated_home, run

from appliance import cli
from appliance.config import load_settings
from appliance.instance import hold_lock, lock_path

home = pytest.fixture(isolated_home)


def closed_port() -> int:
    """A port nothing listens on (taken and given back)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_db_backup_and_restore(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = load_settings().database_file
    database.parent.mkdir(parents=True)
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE items (x)")  # the history's table: a backup must have it
        db.execute("INSERT INTO items VALUES (1)")
    db.close()
    code, out, err = run(capsys, "db", "backup")
    assert (code, err) == (0, "")
    backup = Path(out.removeprefix(f"backed up {database} to ").strip())
    assert backup.parent.name == "backups" and backup.is_file()
    # no database: restored by its name in backups/, nothing kept aside
    database.unlink()
    assert run(capsys, "db", "restore", backup.name) == (
        0, f"restored {database} from {backup}\n", "")
    # a database there: the newest sound backup, the old file kept beside it
    code, out, err = run(capsys, "db", "restore")
    assert (code, err) == (0, "")
    kept = next(database.parent.glob(f"{database.name}.replaced-*"))
    assert out == f"restored {database} from {backup}; the old file is kept as {kept}\n"
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT x FROM items").fetchall() == [(1,)]
    db.close()
    assert run(capsys, "db", "restore", "nothing.db") == (
        2, "", "appliance: the backup nothing.db is not usable (no such file)\n")


def test_service_install_takes_its_venv_as_a_path(home: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "service", "install", "--dry-run", "--root",
                         str(tmp_path / "root"), "--venv", str(tmp_path / "none"))
    assert (code, out) == (1, "")
    assert err == (f"appliance: service install: {tmp_path / 'none'} is not a virtual "
                   "environment (no pyvenv.cfg): run ./bootstrap.sh serve and install from "
                   "its .venv\n")


def test_ytdlp_status_with_no_service_running(home: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The command asks the local service; with none, it reads the virtual environment (and
    an update says why it did not update)."""
    monkeypatch.setenv("YTP_PORT", str(closed_port()))
    monkeypatch.setenv("YTP_YTDLP_INDEX_URL", f"http://127.0.0.1:{closed_port()}/simple")
    assert run(capsys, "ytdlp", "status", "--venv", str(tmp_path)) == (
        1, "", f"appliance: {tmp_path} is not a virtual environment (no bin/python)\n")
    code, out, err = run(capsys, "ytdlp", "status", "--venv", sys.prefix)
    assert (code, err) == (0, "")
    assert out.startswith("yt-dlp 20") and out.endswith(
        " installed, newest unknown (the service is not running)\n")
    index = os.environ["YTP_YTDLP_INDEX_URL"]
    assert run(capsys, "ytdlp", "update", "--venv", sys.prefix) == (
        1, f"the package index {index} cannot be reached\n", "")



@pytest.mark.parametrize("command", ["status", "update"])
def test_a_virtual_environment_that_cannot_run_is_one_line(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], command: str) -> None:
    """With the service down, ``ytdlp status|update --venv`` runs the environment's Python:
    one that is no program (another user's, closed to this one, is refused the same way) or
    one that fails (its own Python upgraded away) was a traceback."""
    monkeypatch.setenv("YTP_PORT", str(closed_port()))
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\nexit 0\n")
    python.chmod(0o644)  # (no one may run it, root neither)
    assert run(capsys, "ytdlp", command, "--venv", str(tmp_path / "venv")) == (
        1, "", f"appliance: the virtual environment {tmp_path / 'venv'} cannot be used: "
               f"[Errno 13] Permission denied: '{python}'\n")
    python.write_text("#!/bin/sh\necho starting >&2\n"
                      "echo 'error while loading shared libraries: libpython3.9.so.1.0' >&2\n"
                      "exit 127\n")
    python.chmod(0o755)
    assert run(capsys, "ytdlp", command, "--venv", str(tmp_path / "venv")) == (
        1, "", f"appliance: the virtual environment {tmp_path / 'venv'} cannot be used: "
               f"{python} exited with 127: error while loading shared libraries: "
               f"libpython3.9.so.1.0\n")
    python.write_text("#!/bin/sh\nexit 3\n")
    assert run(capsys, "ytdlp", command, "--venv", str(tmp_path / "venv")) == (
        1, "", f"appliance: the virtual environment {tmp_path / 'venv'} cannot be used: "
               f"{python} exited with 3\n")


def test_daemon_takes_start_only() -> None:
    assert cli._parser().parse_args(["daemon", "start", "--port", "1"]).action == "start"
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["daemon", "stop"])


def test_a_reader_gone_early_leaves_the_output_to_devnull(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``appliance settings | head -1``: the BrokenPipeError is one exit code, and the
    output goes to /dev/null so that Python's own flush at exit has nowhere to fail."""
    read, write = os.pipe()
    os.close(read)  # the reader has gone

    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

        def fileno(self) -> int:
            return write

    monkeypatch.setattr(sys, "stdout", Gone())
    try:
        assert cli.main(["settings"]) == 1
        null = os.stat(os.devnull)
        assert os.fstat(write).st_rdev == null.st_rdev and os.fstat(write).st_ino == null.st_ino
    finally:
        os.close(write)


def test_no_address_and_a_bad_local_setting_says_both(
        home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """With no --url, APPLIANCE_URL or client file, the command asks the local service at
    its configured port: a bad YTP_PORT was hidden behind "give --url"."""
    monkeypatch.setenv("YTP_PORT", "abc")
    code, out, err = run(capsys, "status")
    assert (code, out) == (1, "")
    assert err == ("appliance: no service to connect to: give --url, set APPLIANCE_URL, or put "
                   f'url = "http://HOST:PORT" in {home}/xdg/appliance/client.toml (the local '
                   "service's settings are not usable: YTP_PORT: expected a whole number, "
                   "got 'abc')\n")
    # with an address given, the local settings are not needed
    code, _, err = run(capsys, "status", "--url", f"127.0.0.1:{closed_port()}")
    assert code == 1 and "is not reachable" in err and "YTP_PORT" not in err


def test_serve_stops_on_a_damaged_database_or_a_port_in_use_with_one_line(
        home: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """What ``serve`` checks before gunicorn starts, in the test process: a database that is
    none (exit 2, which systemd does not restart on), then a port another program holds."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("YTP_PORT", str(closed_port()))
    database = load_settings().database_file
    database.parent.mkdir(parents=True)
    database.write_bytes(b"not a database, but a text of some length " * 100)
    code, out, err = run(capsys, "serve")
    assert (code, out) == (2, "")
    assert err.startswith(f"appliance: the database {database} is damaged (file is not a "
                          f"database): there is no backup in ") and err.count("\n") == 1
    assert cli._database_problem(database) == err.removeprefix("appliance: ").rstrip("\n")
    database.unlink()
    assert cli._database_problem(database) is None  # none yet: the service makes it
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        monkeypatch.setenv("YTP_HOST", "127.0.0.1")
        monkeypatch.setenv("YTP_PORT", str(held.getsockname()[1]))
        code, out, err = run(capsys, "serve")
    assert (code, out) == (2, "")
    assert err.startswith("appliance: bad setting: YTP_PORT") and err.count("\n") == 1


def test_a_backup_of_no_database_and_an_auth_file_that_cannot_be_read_say_so(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``db backup`` where there is no database (before the first start, or another config
    folder than the service's) said SQLite's "unable to open database file"; ``web
    showtoken`` that could not read the auth file said it could not update it."""
    settings = load_settings()
    assert run(capsys, "db", "backup") == (
        1, "", f"appliance: there is no database at {settings.database_file}: the service "
               f"makes it at its first start (is this the service's config folder? "
               f"YTP_CONFIG_PATH)\n")
    (settings.config_path / "auth.json").mkdir(parents=True)
    auth = settings.config_path / "auth.json"
    for command in ("showtoken", "gentoken"):
        assert run(capsys, "web", command) == (
            1, "", f"appliance: web {command}: {auth}: cannot read: [Errno 21] Is a "
                   f"directory: '{auth}'\n")


def test_serve_beside_a_running_service_says_so_in_one_line(
        home: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("YTP_PORT", str(closed_port()))
    config = load_settings().config_path
    config.mkdir(parents=True, exist_ok=True)
    held = hold_lock(config)  # the running service's
    try:
        assert run(capsys, "serve") == (
            2, "", f"appliance: the service is running with the config folder {config} "
                   f"(a process holds {lock_path(config)})\n")
    finally:
        os.close(held)


def test_the_commands_help_names_each_group_and_command(
        capsys: pytest.CaptureFixture[str]) -> None:
    for words, said in ((["--help"], "FlexGet's web commands: passwd, showtoken, gentoken"),
                        (["service", "--help"], "install the systemd service"),
                        (["ytdlp", "--help"], "installed and newest version, last update")):
        with pytest.raises(SystemExit):
            cli.main(words)
        assert said in " ".join(capsys.readouterr().out.split())


def test_the_local_service_is_asked_with_its_own_password(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where this user cannot read the token, the service's configured login is used."""
    monkeypatch.setenv("YTP_AUTH_USERNAME", "admin")
    monkeypatch.setenv("YTP_AUTH_PASSWORD", "correct horse")
    local = cli._local_service()
    assert (local.token, local.user, local.password) == (None, "admin", "correct horse")


def test_service_install_dry_run_says_what_it_would_do(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "service", "install", "--dry-run", "--root",
                         str(tmp_path / "root"), "--venv", sys.prefix)
    assert (code, err) == (0, "")
    assert "systemctl" in out and "appliance.service" in out
