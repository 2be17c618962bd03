"""``appliance``: serve, daemon start, add, status, settings."""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from .config import SettingsError, ensure_folders, load_settings, settings_table
from .logs import configure_logging


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
    add = commands.add_parser("add", help="queue a URL on the running service")
    add.add_argument("url")
    add.add_argument("--preset")
    add.add_argument("--folder")
    commands.add_parser("status", help="show the running service's queue")
    commands.add_parser("settings", help="list every setting with its default")
    return parser


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings(overrides={"host": args.host, "port": args.port})
    ensure_folders(settings)
    from .engine.options import parse_cli
    from .errors import AppError

    try:
        parse_cli(settings.ytdlp_cli)
    except AppError as exc:
        raise SettingsError(f"YTP_YTDLP_CLI: {exc.message}") from None
    configure_logging(settings.log_level)
    from .server import ApplianceServer

    ApplianceServer(settings).run()
    return 0


def _call(method: str, path: str, body: Any = None) -> Any:
    settings = load_settings()
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host
    request = urllib.request.Request(
        f"http://{host}:{settings.port}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    if settings.auth_username:
        token = base64.b64encode(f"{settings.auth_username}:{settings.auth_password}".encode())
        request.add_header("Authorization", "Basic " + token.decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
        raise SystemExit(f"appliance: {detail}") from None
    except OSError as exc:
        raise SystemExit(f"appliance: the service is not reachable on port {settings.port}: "
                         f"{exc}") from None


def _add(args: argparse.Namespace) -> int:
    body = {"url": args.url}
    body.update({k: v for k, v in (("preset", args.preset), ("folder", args.folder)) if v})
    result = _call("POST", "/api/history", body)
    sys.stdout.write(f"queued {result[0]['id']}\n")
    return 0


def _status(args: argparse.Namespace) -> int:
    live = _call("GET", "/api/history/live")
    for item in live["queue"].values():
        percent = item.get("percent")
        done = f"{percent:5.1f}%" if percent is not None else "   -  "
        sys.stdout.write(f"{item['status']:<15} {done} {item['title']}\n")
    sys.stdout.write(f"{len(live['queue'])} in queue, {live['history_count']} in history\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in {"serve", "daemon"}:
            return _serve(args)
        if args.command == "add":
            return _add(args)
        if args.command == "status":
            return _status(args)
        sys.stdout.write(settings_table() + "\n")
        return 0
    except SettingsError as exc:
        sys.stderr.write(f"appliance: bad setting: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
