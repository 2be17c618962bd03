"""``appliance``: serve, daemon start, web passwd|showtoken|gentoken, add, status, tui,
settings, db backup|restore, service install, ytdlp status|update."""

from __future__ import annotations

import argparse
import getpass
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import (
    Settings,
    SettingsError,
    check_ports,
    ensure_folders,
    load_settings,
    settings_table,
)
from .instance import AlreadyRunning, hold_lock
from .logs import configure_logging
from .service_install import DEFAULT_DOWNLOADS, InstallError, Options
from .service_install import install as install_service
from .systemd import claim_notify_socket

if TYPE_CHECKING:
    from .client import ApiClient, LocalService

# The API client (and requests under it), the auth package and the database's backups (and
# SQLite under them) are imported by the commands that use them, not by `appliance serve`,
# whose process stays as gunicorn's master: whatever it imports is memory it never uses, and
# the worker's own copy is not shared with it.

# Queue items `appliance status` lists (a queue of thousands is counted, not listed).
STATUS_ITEMS = 100


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def server_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", help="address to listen on (YTP_HOST)")
        p.add_argument("--port", type=int, help="HTTP port (YTP_PORT)")

    server_flags(commands.add_parser("serve", help="run the service in the foreground"))
    daemon = commands.add_parser("daemon", help="FlexGet's wording: daemon start")
    daemon.add_argument("action", choices=["start"])
    server_flags(daemon)
    def service_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", dest="service_url", metavar="URL",
                       help="the service (default: APPLIANCE_URL, the client file, or the "
                            "local service on its configured port)")
        p.add_argument("--user", help="log in as this user; the password is asked for")

    add = commands.add_parser("add", help="queue URLs on the running service")
    add.add_argument("urls", nargs="+", metavar="url")
    add.add_argument("--preset")
    add.add_argument("--folder")
    service_flags(add)
    service_flags(commands.add_parser("status", help="show the running service's queue"))
    service_flags(commands.add_parser(
        "tui", help="the terminal dashboard: queue, history, logs and settings at a keyboard",
        description="Talks to the service over its HTTP API and websocket, on this box or "
                    "another one. Credentials: APPLIANCE_TOKEN, the client file "
                    "(~/.config/appliance/client.toml, mode 0600), the local auth file, or "
                    "--user and a password prompt.",
    ))
    web = commands.add_parser(
        "web", help="FlexGet's web commands: passwd, showtoken, gentoken",
        description="Change the API's password and token. They write the auth file in the "
                    "config folder; a running service picks the change up at once.",
    )
    web_commands = web.add_subparsers(dest="web_command", required=True)
    passwd = web_commands.add_parser(
        "passwd", help="set the API password (login user: appliance); ends every login session"
    )
    passwd.add_argument("password", help="at least 8 characters; '-' reads it from stdin")
    web_commands.add_parser("showtoken", help="print the API token (made on first use)")
    web_commands.add_parser("gentoken", help="replace the API token (the old one stops working)")
    commands.add_parser("settings", help="list every setting with its default")
    db = commands.add_parser(
        "db", help="database backups: backup, restore",
        description="The service keeps daily backups of its database in the config folder's "
                    "backups/ (YTP_DB_BACKUPS of them).",
    )
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("backup", help="back the database up now (the service may run)")
    restore_cmd = db_commands.add_parser(
        "restore", help="put a backup in place of the database (the service must be stopped); "
                        "the old file is kept beside it",
    )
    restore_cmd.add_argument("file", nargs="?",
                             help="a backup file or its name in backups/; default: the newest "
                                  "sound one")
    service = commands.add_parser(
        "service", help="install as a systemd service: service install [--dry-run]",
        description="Create the service's user and folders, write its systemd unit with this "
                    "checkout's paths and print the systemctl lines that enable it.",
    )
    service_commands = service.add_subparsers(dest="service_command", required=True)
    install = service_commands.add_parser("install", help="install the systemd service")
    install.add_argument("--dry-run", action="store_true",
                         help="show what would be done and the unit; change nothing")
    install.add_argument("--user", default="appliance", help="the service's user and group")
    install.add_argument("--download-path", type=Path, default=DEFAULT_DOWNLOADS,
                         help=f"the media folder (default {DEFAULT_DOWNLOADS})")
    install.add_argument("--root", type=Path, default=Path("/"),
                         help="stage the system's files under this folder instead of /")
    install.add_argument("--venv", type=Path, default=Path(sys.prefix),
                         help="the virtual environment the service runs from")
    ytdlp = commands.add_parser(
        "ytdlp", help="yt-dlp kept current: ytdlp status | update",
        description="Show the installed and the newest yt-dlp, or install the newest into the "
                    "service's virtual environment (checked, rolled back if it fails). With "
                    "the service running, the service does it and retires its warm download "
                    "processes; otherwise this command does it itself.",
    )
    ytdlp_commands = ytdlp.add_subparsers(dest="ytdlp_command", required=True)
    for name, text in (("status", "installed and newest version, last update"),
                       ("update", "install the newest yt-dlp")):
        ytdlp_commands.add_parser(name, help=text).add_argument(
            "--venv", type=Path, default=Path(sys.prefix),
            help="the virtual environment to use when the service is not running "
                 "(default: this one)")
    return parser


def _ytdlp(args: argparse.Namespace) -> int:
    """``appliance ytdlp status|update``: through the local service when it runs (it renews
    its download processes), else on the virtual environment directly."""
    from .client import ApiClient, Connection, Unreachable
    from .client.shown import shown

    local = _local_service()
    client = ApiClient(Connection(local.url, token=local.token, user=local.user,
                                  password=local.password, source="the local service"))
    try:
        client.request("GET", "/api/ping")
    except Unreachable:
        return _ytdlp_offline(args)
    if args.ytdlp_command == "update":
        client.request("POST", "/api/system/ytdlp/update")
        sys.stdout.write("the service is updating yt-dlp ...\n")
        status = _wait_for_update(client)
    else:
        status = _ytdlp_status(client)
    update = status["update"]
    said = f": {update['message']}" if update.get("message") else ""
    if not said and status.get("latest") == "unknown":  # (else a bare "unknown": why?)
        said = (f" (the package index {status.get('index_url')} did not say: it cannot be "
                f"reached, or has no yt-dlp; YTP_YTDLP_INDEX_URL)")
    sys.stdout.write(shown(f"yt-dlp {status.get('installed')} installed, newest "
                           f"{status.get('latest')}{said}") + "\n")
    # (a tuple: a state that is an array or object is no failure, not a TypeError in a set)
    failed = args.ytdlp_command == "update" and update.get("state") in ("failed",
                                                                         "rolled_back")
    return 1 if failed else 0


def _ytdlp_status(client: ApiClient) -> dict[str, Any]:
    """``GET /api/system/ytdlp``, checked: an object whose ``update`` is one."""
    from .client.http import shaped

    status = shaped(client.request("GET", "/api/system/ytdlp"), dict, "yt-dlp's status")
    shaped(status.get("update"), dict, "yt-dlp's status' update")
    return status


def _ytdlp_offline(args: argparse.Namespace) -> int:
    from .client.shown import shown

    settings = load_settings()
    python = args.venv / "bin" / "python"
    try:
        if not python.exists():
            sys.stderr.write(f"appliance: {args.venv} is not a virtual environment "
                             f"(no bin/python)\n")
            return 1
        return _ytdlp_on(args, python, settings)
    except (OSError, subprocess.SubprocessError) as exc:
        # Another user's environment (its folder closed to this one), a bin/python that is
        # no program, or one whose own Python was upgraded away: said, not a traceback.
        sys.stderr.write(shown(f"appliance: the virtual environment {args.venv} cannot be "
                               f"used: {_failure(exc)}") + "\n")
        return 1


def _failure(exc: OSError | subprocess.SubprocessError) -> str:
    """What went wrong running a program, in one line: its last line of errors, if any."""
    if isinstance(exc, subprocess.CalledProcessError):
        said = str(exc.stderr or "").strip().splitlines()
        return f"{exc.cmd[0]} exited with {exc.returncode}" + (f": {said[-1]}" if said else "")
    return str(exc)


def _ytdlp_on(args: argparse.Namespace, python: Path, settings: Settings) -> int:
    from .client.shown import shown
    from .ytdlp_update import Updater

    updater = Updater(python, settings.ytdlp_index_url,
                      settings.config_path / "ytdlp-releases",
                      check_url=settings.ytdlp_check_url,
                      # what a release and pip print is shown, never obeyed
                      say=lambda text: sys.stdout.write(shown(text) + "\n"))
    if args.ytdlp_command == "status":
        sys.stdout.write(shown(f"yt-dlp {updater.installed()} installed, newest "
                               f"{updater.latest() or 'unknown'} (the service is not "
                               f"running)") + "\n")
        return 0
    outcome = updater.update()
    sys.stdout.write(shown(outcome.message) + "\n")
    return 0 if outcome.state in {"updated", "up_to_date"} else 1


def _wait_for_update(client: ApiClient) -> dict[str, Any]:
    from .client import ApiError

    deadline = time.monotonic() + UPDATE_SECONDS
    while (status := _ytdlp_status(client))["update"].get("state") == "running":
        if time.monotonic() > deadline:
            raise ApiError(0, f"the update still runs after {UPDATE_SECONDS // 60:.0f} "
                              "minutes: see the service's log (journalctl -u appliance)")
        time.sleep(1)  # a person waits for pip: a poll a second is plenty
    return status


def _service(args: argparse.Namespace) -> int:
    options = Options(root=args.root.resolve(), user=args.user,
                      download_path=args.download_path, venv=args.venv.absolute())
    try:
        install_service(options, dry_run=args.dry_run,
                        say=lambda text: sys.stdout.write(text + "\n"))
    except (InstallError, OSError) as exc:
        sys.stderr.write(f"appliance: service install: {exc}\n")
        return 1
    return 0


def _check_default_options(settings: Settings) -> None:
    """Refuse bad YTP_YTDLP_CLI before start. Imported only when set: the gunicorn master
    forks the worker, and the engine package would cost both of them memory for nothing."""
    from .engine.option_table import tables
    from .engine.options import parse_cli
    from .errors import AppError

    tables.keep_in(settings.config_path)  # the worker finds the table made here
    try:
        parse_cli(settings.ytdlp_cli)
    except AppError as exc:
        raise SettingsError(f"YTP_YTDLP_CLI: {exc.message}") from None


def _serve(args: argparse.Namespace) -> int:
    """The service, in this process (``appliance.__main__`` ran it again optimized)."""
    claim_notify_socket()  # the worker says READY=1, not gunicorn's master (appliance.systemd)
    settings = load_settings(overrides={"host": args.host, "port": args.port})
    ensure_folders(settings)
    # Held while the service runs (the worker shares it): see appliance.instance.
    lock = hold_lock(settings.config_path)
    try:
        problem = _database_problem(settings.database_file)
        if problem:
            # Starting again would not help: systemd's RestartPreventExitStatus=2 stops there.
            sys.stderr.write(f"appliance: {problem}\n")
            return 2
        check_ports(settings)
        if settings.ytdlp_cli:
            _check_default_options(settings)
        configure_logging(settings.log_level)
        from .server import ApplianceServer, raise_open_files

        raise_open_files()  # before gunicorn: its worker and every download inherit it
        ApplianceServer(settings).run()
    finally:
        os.close(lock)
    return 0


def _database_problem(database: Path) -> str | None:
    """What ``check_database`` finds wrong with the database, found by a child process: SQLite
    is never loaded into this process, which goes on as gunicorn's master (1.1 MiB of its
    memory, for the life of the service)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # no thread runs yet: a fork of this process is safe
        code = 1
        try:
            os.close(read)
            from .store.backups import DatabaseProblem, check_database

            try:
                check_database(database)
                code = 0
            except DatabaseProblem as exc:
                os.write(write, str(exc).encode())
                code = 2
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code not in (0, 2):
        raise RuntimeError(f"the check of the database {database} failed (exit code {code})")
    return said or None


def _local_service() -> LocalService:
    """The service on this box, from its own settings and auth file."""
    from .auth import read_token
    from .client import LocalService

    settings = load_settings()
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host
    if ":" in host:
        host = f"[{host}]"
    base = settings.base_path.rstrip("/")
    return LocalService(
        url=f"http://{host}:{settings.port}{base}",
        token=read_token(settings.config_path),  # None when this user may not read it
        user=settings.auth_username or None,
        password=settings.auth_password or None,
    )


def _client(args: argparse.Namespace) -> ApiClient:
    from .client import ApiClient, ConnectionFileProblem, resolve

    password = None
    if args.user:
        password = getpass.getpass(f"Password for {args.user}: ")
    unusable = None
    try:
        local = _local_service()
    except SettingsError as exc:
        local, unusable = None, exc  # a remote service needs no local settings
    try:
        return ApiClient(resolve(url=args.service_url, user=args.user, password=password,
                                 local=local))
    except ConnectionFileProblem as exc:
        if unusable is None:
            raise
        # No address anywhere, and the local service's own was unreadable: "give --url"
        # alone hid the bad setting (YTP_PORT=abc) from the person who had set it.
        raise ConnectionFileProblem(f"{exc} (the local service's settings are not usable: "
                                    f"{unusable})") from None


def _unauthorized_hint() -> str:
    return (" (the command sends APPLIANCE_TOKEN, the token of the client file or of the local "
            "auth file — `appliance web showtoken` as the service's user prints it — or asks "
            "for a password with --user)")


def _add(args: argparse.Namespace) -> int:
    from .client.adding import queue_each
    from .client.shown import removed_options, shown

    client = _client(args)
    fields = {k: v for k, v in (("preset", args.preset), ("folder", args.folder)) if v}
    refused = 0
    # A URL the service refuses is named with its reason, and the others are queued: the
    # service stores a request all or none, and one typo queued nothing, said without the URL.
    for added in queue_each(client, args.urls, fields, failures_raise=True):
        if added.answer is None:
            refused += 1
            error = str(added.error)
            # (one URL given: its error as the service said it)
            named = error if len(args.urls) == 1 or added.url in error else \
                f"{added.url}: {error}"
            sys.stderr.write(shown(f"appliance: {named}") + "\n")
            continue
        answer = added.answer
        removed = removed_options(answer)
        note = f" (removed options: {removed})" if removed else ""
        sys.stdout.write(shown(f"{answer.get('status', 'queued')} {answer.get('id', '')} "
                               f"{answer.get('url', '')}{note}") + "\n")
    return 1 if refused else 0


def _status(args: argparse.Namespace) -> int:
    from .client.shown import number, shown

    # checked: queue an object of objects, history_count and queue_count numbers
    live = _client(args).live(queue_limit=STATUS_ITEMS)
    queue = live.get("queue") or {}
    for item in queue.values():
        percent = number(item.get("percent"))
        done = f"{percent:5.1f}%" if percent is not None else "   -  "
        title = item.get("title") or item.get("url") or ""
        # (text: an object's format with a width raised; shown before it is padded, which
        # counts what shown() leaves out)
        status = shown(str(item.get("status") or "?"))
        sys.stdout.write(shown(f"{status:<15} {done} {title}") + "\n")
    count = live.get("queue_count") or len(queue)
    if count > len(queue):
        sys.stdout.write(f"(the {len(queue)} shown are the running ones and the newest "
                         f"waiting)\n")
    sys.stdout.write(f"{count} in queue, {live.get('history_count') or 0} in history\n")
    return 0


def _tui(args: argparse.Namespace) -> int:
    from .tui.app import run

    # Textual reads keys from stdin and draws on stderr. Without a terminal on both (`ssh
    # HOST appliance tui` gives none unless asked with -t; a script; 2>file) it drew escape
    # codes into a pipe and waited for keys no one could press, for good. Asked before a
    # password is.
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        sys.stderr.write("appliance: the TUI needs a terminal for its keys and its screen "
                         "(over SSH: ssh -t HOST appliance tui)\n")
        return 1
    return run(_client(args))


def _over_api(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from .client import ApiError, ConnectionFileProblem, Unreachable
    from .client.shown import shown

    try:
        return command(args)
    except ConnectionFileProblem as exc:
        sys.stderr.write(f"appliance: {shown(str(exc))}\n")
    except Unreachable as exc:
        sys.stderr.write(f"appliance: the service is not reachable at {shown(exc.url)}: "
                         f"{shown(exc.reason)} (is it running? systemctl status appliance)\n")
    except ApiError as exc:
        hint = _unauthorized_hint() if exc.unauthorized else ""
        sys.stderr.write(f"appliance: {shown(exc.message)}{hint}\n")
    return 1


def _web(args: argparse.Namespace) -> int:
    from .auth import MIN_LENGTH as MIN_PASSWORD_LENGTH
    from .auth import USERNAME as AUTH_USERNAME
    from .auth import gen_token, set_password, show_token

    config_path = load_settings().config_path
    try:
        if args.web_command == "passwd":
            password = args.password
            if password == "-" and sys.stdin.isatty():
                password = getpass.getpass("New password: ")
            elif password == "-":
                password = sys.stdin.readline().rstrip("\r\n")
            if len(password) < MIN_PASSWORD_LENGTH:
                sys.stderr.write(f"appliance: the password must be at least "
                                 f"{MIN_PASSWORD_LENGTH} characters long\n")
                return 2
            set_password(config_path, password)
            sys.stdout.write(f"Password updated. Log in as user '{AUTH_USERNAME}'; existing "
                             f"login sessions have been ended.\n")
        elif args.web_command == "showtoken":
            sys.stdout.write(show_token(config_path) + "\n")
        else:
            sys.stdout.write(gen_token(config_path) + "\n")
    except (OSError, ValueError) as exc:
        # (its text names the file and what failed: "cannot update the auth file" was said
        # of a showtoken that could not read it)
        sys.stderr.write(f"appliance: web {args.web_command}: {exc}\n")
        return 1
    return 0


def _backup_file(database: Path, name: str | None) -> Path | None:
    """The backup that ``appliance db restore NAME`` means: a path, or a name in backups/."""
    from .store.backups import backup_folder

    if not name:
        return None
    in_folder = backup_folder(database) / name
    return in_folder if not Path(name).exists() and in_folder.exists() else Path(name)


def _db(args: argparse.Namespace) -> int:
    import sqlite3

    from .store.backups import DatabaseProblem, make_backup, restore

    settings = load_settings()
    database = settings.database_file
    try:
        if args.db_command == "backup":
            if not database.exists():
                # (SQLite's words for it: "unable to open database file")
                sys.stderr.write(f"appliance: there is no database at {database}: the service "
                                 f"makes it at its first start (is this the service's config "
                                 f"folder? YTP_CONFIG_PATH)\n")
                return 1
            path = make_backup(database, settings.db_backups)
            sys.stdout.write(f"backed up {database} to {path}\n")
            return 0
        lock = hold_lock(settings.config_path)
        try:
            restored, aside = restore(database, _backup_file(database, args.file))
        finally:
            os.close(lock)
    except AlreadyRunning as exc:
        sys.stderr.write(f"appliance: {exc}: stop it first (systemctl stop appliance)\n")
        return 1
    except DatabaseProblem as exc:
        sys.stderr.write(f"appliance: {exc}\n")
        return 2
    except (OSError, sqlite3.Error) as exc:
        sys.stderr.write(f"appliance: db {args.db_command} failed: {exc}\n")
        return 1
    kept = f"; the old file is kept as {aside}" if aside else ""
    sys.stdout.write(f"restored {database} from {restored}{kept}\n")
    return 0


# pip on a Raspberry Pi takes minutes; a service that says "running" for longer is stuck.
UPDATE_SECONDS = 30 * 60.0

API_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "add": _add, "status": _status, "tui": _tui,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in {"serve", "daemon"}:
            return _serve(args)
        if args.command in API_COMMANDS:
            return _over_api(API_COMMANDS[args.command], args)
        if args.command == "web":
            return _web(args)
        if args.command == "db":
            return _db(args)
        if args.command == "service":
            return _service(args)
        if args.command == "ytdlp":
            return _over_api(_ytdlp, args)
        sys.stdout.write(settings_table() + "\n")
        return 0
    except SettingsError as exc:
        sys.stderr.write(f"appliance: bad setting: {exc}\n")
        return 2
    except AlreadyRunning as exc:
        # Starting again would not help: systemd's RestartPreventExitStatus=2 stops there.
        sys.stderr.write(f"appliance: {exc}\n")
        return 2
    except KeyboardInterrupt:  # Ctrl-C at a prompt or while a slow service answers
        sys.stderr.write("\nappliance: interrupted\n")
        return 130
    except EOFError:  # getpass's, when the input ends (no terminal, stdin closed)
        sys.stderr.write("appliance: the input ended before a password was given\n")
        return 1
    except BrokenPipeError:
        # The reader has gone (`appliance status | head -1`): the rest has no one to read
        # it, and Python's own flush at exit would fail (and say so) too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
