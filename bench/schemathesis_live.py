"""Schemathesis against the live service: no 5xx, ever.

Starts ``appliance serve`` (real gunicorn, auth on, console on) and runs property-based cases
generated from its own OpenAPI document (``/api/openapi.json``) for a given time, valid and
schema-breaking ones in turn, every operation each round, sent with the credentials over HTTP.
It prints the responses by operation and status class and each 5xx with a curl line that
repeats it; the goal is zero 5xx. Unlike ``tests/test_openapi.py`` (in process, a fixed set
of cases) the cases differ from run to run and go through gunicorn.

Loopback only: every generated string that parses as a URL with a host is pointed at a closed
local port before it is sent (malformed ones are sent as they are: the service must refuse
them), so yt-dlp, webhooks and Apprise never reach beyond this machine.

    .venv/bin/python bench/schemathesis_live.py [--minutes 10] [--quick] [--keep]

--quick: one minute. Not part of the test suite: ten minutes of two busy cores.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import logging
import random
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import common
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

log = logging.getLogger("bench.schemathesis")

USER, PASSWORD = "bench", "bench-password-1"
# Per operation and mode in a round; rounds (operations in a new random order each) repeat
# until the time is up, so that a short or slow run still reaches every operation.
EXAMPLES = 5
# Not run, each with its reason (as in tests/test_openapi.py).
SKIPPED = {
    # Changes the running service's real settings, the download folder included.
    ("PUT", "/api/settings"),
    # Failed logins are slowed on purpose (brute-force delay): a fuzz run would only wait.
    ("POST", "/api/auth/login"),
    # Runs yt-dlp with generated arguments: generated URLs inside them could leave the box.
    ("POST", "/api/system/terminal"),
}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


UNREACHABLE = f"http://127.0.0.1:{_closed_port()}/schemathesis"


def _reachable_url(text: str) -> bool:
    if "://" not in text:
        return False
    try:
        return bool(urlsplit(text.strip()).hostname)
    except ValueError:
        return False


def _local(value: Any) -> Any:
    """``value`` with every string that is a usable URL replaced by the unreachable one."""
    if isinstance(value, str):
        return UNREACHABLE if _reachable_url(value) else value
    if isinstance(value, dict):
        return {k: _local(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_local(v) for v in value]
    return value


def _streamed(operation: Any) -> bool:
    content = operation.definition.raw.get("responses", {}).get("200", {}).get("content", {})
    return set(content) == {"text/event-stream"}


class Tally:
    def __init__(self) -> None:
        self.by_operation: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter)
        self.errors: list[str] = []
        self.transport: collections.Counter[str] = collections.Counter()
        self.unsent: collections.Counter[str] = collections.Counter()

    def record(self, label: str, status: int, curl: str, body: str) -> None:
        self.by_operation[label][f"{status // 100}xx"] += 1
        if status >= 500 and len(self.errors) < 50:
            self.errors.append(f"{label} -> {status}: {body[:300]}\n    {curl}")

    def count(self, kind: str) -> int:
        return sum(c[kind] for c in self.by_operation.values())


def _run_operation(operation: Any, mode: GenerationMode, server: common.Server,
                   headers: dict[str, str], tally: Tally, deadline: float) -> None:
    session = requests.Session()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate],
              verbosity=Verbosity.quiet)
    def run(case: Any) -> None:
        if time.monotonic() > deadline:
            return
        if isinstance(case.body, dict | list | str):
            case.body = _local(case.body)
        if case.query:
            case.query = _local(case.query)
        # Sent with requests itself: schemathesis's own response wrapper decodes every body
        # as text and fails on the PNG and font assets.
        request = case.as_transport_kwargs(base_url=server.url, headers=headers)
        try:
            response = session.request(**request, timeout=60)
        except requests.RequestException as exc:
            tally.transport[type(exc).__name__] += 1
            tally.errors.append(f"{operation.label}: {exc!r}\n    "
                                f"{case.as_curl_command(headers, base_url=server.url)}")
            return
        tally.record(operation.label, response.status_code,
                     case.as_curl_command(headers, base_url=server.url),
                     response.content[:300].decode(errors="replace"))

    try:
        run()
    except Unsatisfiable:  # no schema here that a value can break
        pass
    except Exception as exc:  # a case schemathesis could not build or send
        tally.unsent[f"{operation.label}: {type(exc).__name__}"] += 1
        log.warning("%s (%s): %s", operation.label, mode.value, str(exc).splitlines()[0])


# One valid record of each kind, so that cases on /…/{id} also meet one that exists.
SEEDS = [
    ("/api/presets", {"name": "seed", "cli": "-f best"}),
    ("/api/conditions", {"name": "seed", "filter": "duration > 60 & title ~= '(?i)live'"}),
    ("/api/dl_fields", {"name": "seed", "field": "--proxy", "kind": "string"}),
    ("/api/notifications", {"name": "seed", "request": {"url": UNREACHABLE}}),
]


def _seed(server: common.Server, headers: dict[str, str]) -> None:
    for path, record in SEEDS:
        response = requests.post(server.url + path, json=record, headers=headers, timeout=30)
        if response.status_code != 200:
            log.warning("seed %s: %s %s", path, response.status_code, response.text[:200])


def body(stack: contextlib.ExitStack, minutes: float, keep: bool) -> int:
    root = common.temp_root(stack, "schemathesis", keep)
    server = common.start_server(stack, root, {
        "YTP_AUTH_USERNAME": USER, "YTP_AUTH_PASSWORD": PASSWORD,
        "YTP_CONSOLE_ENABLED": "true", "YTP_LOG_LEVEL": "info",
    })
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}"}
    assert requests.get(server.url + "/api/history", timeout=10).status_code == 401
    _seed(server, headers)
    document = requests.get(server.url + "/api/openapi.json", headers=headers, timeout=30)
    document.raise_for_status()
    config = SchemathesisConfig.from_dict({"generation": {"database": "none"}})
    schema = schemathesis.openapi.from_dict(document.json(), config=config)
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [o for o in operations
                  if (o.method.upper(), o.path) not in SKIPPED and not _streamed(o)]
    tally = Tally()
    started = time.monotonic()
    deadline = started + minutes * 60
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        random.shuffle(operations)
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if time.monotonic() > deadline:
                    break
                _run_operation(operation, mode, server, headers, tally, deadline)
        log.info("round %d done: %d requests, %d 5xx", rounds,
                 sum(sum(c.values()) for c in tally.by_operation.values()), tally.count("5xx"))
    alive = requests.get(server.url + "/api/ping", timeout=10).status_code == 200

    rows = [(label, c["2xx"], c["3xx"], c["4xx"], c["5xx"])
            for label, c in sorted(tally.by_operation.items())]
    common.out(f"{len(operations)} operations, {rounds} round(s), "
               f"{time.monotonic() - started:.0f} s")
    common.table(("operation", "2xx", "3xx", "4xx", "5xx"), rows)
    for line in tally.errors:
        common.out(line)
    for what, count in sorted(tally.unsent.items()):
        common.out(f"not sent ({count} time(s)): {what}")
    summary = common.Summary("schemathesis against the live service")
    total = sum(r[1] + r[2] + r[3] + r[4] for r in rows)
    summary.info("requests", str(total))
    summary.check("5xx responses", tally.count("5xx"), 0, "{:.0f}")
    summary.check("requests that got no answer", sum(tally.transport.values()), 0, "{:.0f}")
    summary.verdict("service alive after the run", str(alive), "True", alive)
    summary.print()
    return 0 if summary.passed else 1


def main() -> int:
    args = common.parse_args(__doc__.split("\n\n")[0], lambda p: p.add_argument(
        "--minutes", type=float, default=10.0, help="how long to run (default 10)"))
    minutes = 1.0 if args.quick else args.minutes
    limit = int(minutes * 60 + 600)  # the last round's cases, start and stop
    return common.run(lambda stack: body(stack, minutes, args.keep), limit,
                      quiet_wait=10 if args.quick else 60)


if __name__ == "__main__":
    raise SystemExit(main())
