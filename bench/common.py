"""Shared plumbing for the benchmarks: paths, time limits, clean-up, /proc readers, reports.

Every benchmark runs its body through :func:`run`, which

- puts the repository and ``tests/`` on ``sys.path`` (for ``appliance`` and ``support``),
- arms a hard time limit (SIGALRM) and turns SIGTERM into a normal exit,
- hands the body an ``ExitStack`` onto which it pushes every server, origin and temp folder,
  so that they are stopped and removed however the run ends.

Reports go to stdout with ``sys.stdout.write``; progress goes to ``logging`` on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for _path in (REPO / "tests", REPO):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from support.origin import MediaOrigin  # noqa: E402
from support.server import Server, wait_for  # noqa: E402

__all__ = [
    "REPO",
    "MediaOrigin",
    "Server",
    "Summary",
    "out",
    "wait_for",
]

log = logging.getLogger("bench")

VENV_BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchTimeout(Exception):
    """The benchmark passed its time limit."""


# --- running ----------------------------------------------------------------------------


def parse_args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None
               ) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a small, fast version")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp folder (for post-mortems); servers are still stopped")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    raise BenchTimeout("the benchmark passed its time limit")


def _on_term(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def machine_busy(interval: float = 1.0) -> float:
    """Fraction of all cores busy over ``interval`` (other people's tests, builds...)."""
    busy0, total0 = _cpu_times()
    time.sleep(interval)
    busy1, total1 = _cpu_times()
    return (busy1 - busy0) / max(1, total1 - total0)


# Busy fraction of the machine before the benchmark started; shown with the summary.
MACHINE: dict[str, float] = {}
QUIET = 0.15


def wait_for_quiet(max_wait: float) -> float:
    """Wait (up to ``max_wait`` s) until the machine is nearly idle; figures taken on a busy
    box are not comparable. Returns the last busy fraction measured."""
    deadline = time.monotonic() + max_wait
    busy = machine_busy()
    while busy > QUIET and time.monotonic() < deadline:
        log.warning("machine busy (%.0f%% of %d cores); waiting for quiet", busy * 100,
                    os.cpu_count() or 1)
        time.sleep(4)
        busy = machine_busy()
    return busy


def run(body: Callable[[contextlib.ExitStack], int], limit_seconds: int,
        quiet_wait: float = 60.0) -> int:
    """Run ``body(stack)`` under a hard time limit; always unwind ``stack`` afterwards.

    Waits up to ``quiet_wait`` s first for the machine to be idle (not counted in the limit).
    """
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("support").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _on_term)
    MACHINE["busy_before"] = wait_for_quiet(quiet_wait)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(limit_seconds)
    stack = contextlib.ExitStack()
    try:
        return body(stack)
    except BenchTimeout:
        log.error("time limit of %d s reached; cleaning up", limit_seconds)
        return 2
    finally:
        signal.alarm(0)
        stack.close()


def temp_root(stack: contextlib.ExitStack, name: str, keep: bool = False) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    if keep:
        stack.callback(log.info, "kept %s", root)
    else:
        stack.callback(shutil.rmtree, root, ignore_errors=True)
    return root


def base_tree(root: Path, rev: str) -> Path:
    """``appliance/`` as it was at commit ``rev`` (``git archive``), in a folder of ``root``:
    a base checkout to measure against, imported by a child run with ``checkout_env``."""
    tree = root / f"base-{rev}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "appliance"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def checkout_env(tree: Path) -> dict[str, str]:
    """The environment of a ``python -S`` child that imports ``appliance`` from ``tree``:
    ``-S`` keeps the project's editable install (a finder that wins over PYTHONPATH) out,
    and PYTHONPATH gives the venv's packages back."""
    return {**os.environ, "PYTHONPATH": f"{tree}:{sysconfig.get_paths()['purelib']}"}


def in_checkout(tree: Path, script: str, *args: object) -> Any:
    """``script --measure args`` in a fresh interpreter importing ``appliance`` from ``tree``
    (``checkout_env``): what it printed last, read as JSON. (The child must not import this
    module: it puts this checkout first on ``sys.path``.)"""
    done = subprocess.run([sys.executable, "-S", script, "--measure", *map(str, args)],
                          env=checkout_env(tree), capture_output=True, text=True,
                          timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the child for {tree} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def start_origin(stack: contextlib.ExitStack, root: Path) -> MediaOrigin:
    return stack.enter_context(MediaOrigin(root / "origin"))


def start_server(stack: contextlib.ExitStack, root: Path, env: dict[str, str] | None = None
                 ) -> Server:
    """Start ``appliance serve`` under ``root``; it is stopped (and reaped) on unwind."""
    # As the service starts on a box: its yt-dlp option table made at its first start.
    server = Server(root, {"YTP_LOG_LEVEL": "warning", **(env or {})}, option_table=False)
    stack.callback(stop_server, server)
    started = time.monotonic()
    server.start()
    log.info("server up on %s in %.2f s", server.url, time.monotonic() - started)
    return server


def stop_server(server: Server) -> None:
    """SIGTERM, wait; whatever survives (a stuck download process) gets SIGKILL."""
    if server.proc is None:
        return
    pids: list[int] = []
    with contextlib.suppress(Exception):
        pids = server.pids()
    try:
        server.stop(timeout=40)
    except Exception as exc:  # clean-up must go on: kill what is left
        log.warning("server did not stop cleanly (%s); killing %s", exc, pids)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if server.proc is not None:
            with contextlib.suppress(Exception):
                server.proc.wait(timeout=10)
            server.proc = None
    with contextlib.suppress(Exception):
        server.session.close()


def tool(name: str) -> str:
    """An executable of the venv (yt-dlp, py-spy), else from PATH."""
    local = VENV_BIN / name
    return str(local) if local.exists() else (shutil.which(name) or name)


# --- the service's processes ------------------------------------------------------------


def process_tree(server: Server) -> dict[str, Any]:
    """``{"master": pid, "worker": pid | None, "children": [pids]}`` of a running server."""
    assert server.proc is not None
    pids = server.pids()
    master = server.proc.pid
    worker = next((p for p in pids if p != master and ppid(p) == master), None)
    return {"master": master, "worker": worker,
            "children": [p for p in pids if p not in (master, worker)]}


def descendants(root: int) -> list[int]:
    """Every process started, directly or not, by ``root``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (parent := ppid(int(entry.name))) is not None:
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        found.extend(kids := children.get(todo.pop(), []))
        todo.extend(kids)
    return found


def ppid(pid: int) -> int | None:
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int(_stat_fields(pid)[1])
    return None


def _stat_fields(pid: int) -> list[str]:
    # Fields after the command name, which may contain spaces and parentheses.
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, in seconds (0 when it is gone)."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid: int, key: str) -> int:
    """A ``kB`` line (VmRSS, ...) of /proc/<pid>/status; 0 when the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def pss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))




def py_spy_dump(pid: int) -> str:
    """A py-spy stack dump of ``pid`` (for post-mortems of a missed goal)."""
    try:
        done = subprocess.run([tool("py-spy"), "dump", "--pid", str(pid)], capture_output=True,
                              text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"py-spy failed: {exc}"
    return done.stdout or done.stderr


def fsync_latency(folder: Path, count: int = 50) -> list[float]:
    """Seconds per small write + fsync in ``folder``: the floor under every SQLite commit
    (the store runs with synchronous=FULL)."""
    path = folder / ".fsync-probe"
    samples = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for index in range(count):
            started = time.perf_counter()
            os.pwrite(fd, b"x" * 4096, index * 4096)
            os.fsync(fd)
            samples.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return samples


# --- figures ----------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else math.nan


def latency_ms(samples: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / p99 / max of ``samples`` (seconds), in milliseconds."""
    return {
        "n": len(samples),
        "p50": percentile(samples, 50) * 1000,
        "p95": percentile(samples, 95) * 1000,
        "p99": percentile(samples, 99) * 1000,
        "max": (max(samples) if samples else math.nan) * 1000,
    }


def mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.1f} MiB"


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for index, row in enumerate(cells):
        out("  " + "  ".join(c.rjust(w) if i else c.ljust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if index == 0:
            out("  " + "  ".join("-" * w for w in widths))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


class Summary:
    """The closing block: one line per figure with its goal and PASS / MISS (or INFO)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: list[tuple[str, str, str, str]] = []

    def check(self, figure: str, value: float, goal: float, fmt: str = "{:.2f}",
              unit: str = "", *, lower_is_better: bool = True) -> bool:
        ok = (value <= goal) if lower_is_better else (value >= goal)
        ok = ok and not math.isnan(value)
        sign = "<=" if lower_is_better else ">="
        self.rows.append((figure, fmt.format(value) + unit, f"{sign} {fmt.format(goal)}{unit}",
                          "PASS" if ok else "MISS"))
        return ok

    def info(self, figure: str, value: str) -> None:
        self.rows.append((figure, value, "-", "INFO"))

    def verdict(self, figure: str, value: str, goal: str, ok: bool) -> bool:
        self.rows.append((figure, value, goal, "PASS" if ok else "MISS"))
        return ok

    @property
    def passed(self) -> bool:
        return all(r[3] != "MISS" for r in self.rows)

    def print(self) -> None:
        out()
        out(f"== summary: {self.name} ==")
        table(("figure", "value", "goal", "result"), self.rows)
        busy = MACHINE.get("busy_before")
        if busy is not None:
            load = Path("/proc/loadavg").read_text().split()[:3]
            note = "" if busy <= QUIET else "  (BUSY: other load, figures unreliable)"
            out(f"  machine: {os.cpu_count()} cores, {busy * 100:.0f}% busy before the run, "
                f"load average now {' '.join(load)}{note}")
        out(f"== {self.name}: {'PASS' if self.passed else 'MISS'} ==")

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps([dict(zip(("figure", "value", "goal", "result"), r,
                                              strict=True)) for r in self.rows], indent=2))


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def background(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
