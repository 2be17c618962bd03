"""The real service, started as ``appliance serve`` in a child process, for end-to-end tests."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05,
             message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as exc:  # the predicate may race the thing it watches
            last_error = exc
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {message}"
                         + (f" (last error: {last_error!r})" if last_error else ""))


def _outgoing_ports() -> tuple[int, int]:
    """The range the kernel takes a client socket's own port from."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port_pair() -> int:
    """A port P such that P and P+1 are free (HTTP and websocket), taken below the range of
    client sockets' own ports: a test's connection elsewhere may take a free port in that
    range at any moment, this pair's P+1 included (met in CI). Drawn from the system's
    randomness: every xdist worker's ``random`` has the same seed."""
    low = _outgoing_ports()[0]
    draw = random.SystemRandom()
    for _ in range(200):
        port = draw.randrange(10000, low - 1) if low > 10001 else draw.randrange(1024, 65534)
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair")


def raw_request(server: Server, path: str, headers: dict[str, str] | None = None,
                method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """A request sent with its path exactly as given (no client normalising it)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in (headers or {}).items():
        conn.putheader(name, value)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


class Server:
    # The interpreter that runs ``appliance serve``: this one, or the main environment's when
    # another environment (Home Assistant's tests) drives the service.
    python = sys.executable

    def __init__(self, root: Path, env: dict[str, str] | None = None,
                 port: int | None = None, output: Any = None, option_table: bool = True
                 ) -> None:
        """``output``: where stdout and stderr go (a file or socket); default server.log.
        ``option_table``: its config folder holds yt-dlp's option table before the first
        start, as a service that started before keeps it (``support.option_tables``)."""
        self.root = root
        self.option_table = option_table
        self.output = output
        self.port = port or free_port_pair()
        self.env = {
            **os.environ,
            "YTP_HOST": "127.0.0.1",
            "YTP_PORT": str(self.port),
            "YTP_CONFIG_PATH": str(root / "config"),
            "YTP_DOWNLOAD_PATH": str(root / "downloads"),
            "YTP_TEMP_PATH": str(root / "tmp"),
            "YTP_LOG_LEVEL": "info",
            # Tests download the same clips again and again; archive tests turn it on.
            "YTP_KEEP_ARCHIVE": "false",
            # No yt-dlp update from the internet into the tests' own virtual environment.
            "YTP_YTDLP_INDEX_URL": "http://127.0.0.1:9/simple",
            # Test servers stay off the LAN; the discovery test turns it on, on loopback.
            "YTP_ZEROCONF": "false",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / "server.log"
        self.session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port + 1}/ws"

    @property
    def download_path(self) -> Path:
        return self.root / "downloads"

    def start(self) -> Server:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.option_table and self.python == sys.executable:  # appliance is importable
            from .option_tables import keep_option_table

            keep_option_table(Path(self.env["YTP_CONFIG_PATH"]))
        log = self.output if self.output is not None else self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [self.python, "-m", "appliance", "serve"], env=self.env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        if self.output is None:
            log.close()
        wait_for(self._ready, timeout=60, message=f"server on {self.url} ({self.log_path})")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"server exited: {self.log()[-3000:]}")
        try:
            ping = requests.get(self.url + "/api/ping", timeout=1).ok
        except requests.ConnectionError:
            return False
        if not ping:
            return False
        # The websocket starts in the same worker hook, right after the engine.
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port + 1)) == 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs.setdefault("headers", {})["Content-Type"] = "application/json"
        return self.request("POST", path, **kwargs)

    def item(self, item_id: str) -> dict[str, Any]:
        response = self.get(f"/api/history/{item_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_status(self, item_id: str, statuses: set[str], timeout: float = 60) -> dict:
        return wait_for(lambda: (i := self.item(item_id))["status"] in statuses and i,
                        timeout=timeout, message=f"item {item_id} to reach {statuses}")

    def pids(self) -> list[int]:
        """Every process of the service: master, worker, download processes."""
        assert self.proc is not None
        out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True)
        children: dict[int, list[int]] = {}
        for line in out.stdout.splitlines():
            pid, ppid = (int(x) for x in line.split())
            children.setdefault(ppid, []).append(pid)
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int | None:
        if self.proc is None:
            return None
        pids = self.pids()
        # The session's idle keep-alive connections closed first, as a client that is done
        # closes them: one left open held each stop 2 s more (the graceful close waits that
        # long for a client's FIN), seconds the suite's hundreds of stops spent waiting.
        self.session.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        wait_for(lambda: not any(_alive(p) for p in pids), timeout=30,
                 message="every process of the service to exit")
        self.proc = None
        return code

    def kill_hard(self) -> None:
        """``kill -9`` the master and the worker at once (a power cut, an OOM kill)."""
        pids = self.pids()
        for pid in pids[:2]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(timeout=10)
        wait_for(lambda: not any(_alive(p) for p in pids), timeout=30,
                 message="download processes to follow the killed service")
        self.proc = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by a dead parent) counts as gone.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        return state != "Z"
    return False
