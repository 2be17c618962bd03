"""``POST /api/system/terminal``: run yt-dlp with the given arguments and stream its output.

Only with ``YTP_CONSOLE_ENABLED=true`` (403 otherwise). The command is split like a shell
would (``shlex``) but never given to one: the process is yt-dlp's own command line,
``--ignore-config <arguments>``, saving to the download folder, run by an isolated
interpreter (``engine/contained_cli.py``: every file it writes is checked on its final path,
and nothing in a download folder can be imported in place of yt-dlp), in its own process
group, with no stdin once it has read its arguments there (a command line is every user's
to read, and the arguments may hold a ``--password`` or an ``Authorization`` header). Its
stdout and stderr lines come as SSE ``output`` events, then one ``close`` event with the exit
code. The process group is killed when the client leaves, when
the service stops, or after ``YTP_CONSOLE_TIMEOUT`` seconds.

The console is an admin feature, but still not a way around the download rules: options that
run programs, read or write files outside the download folder, or load other configuration
are refused (400), by the same policy as downloads (``engine/options.py``, ``refusal``).
Information flags that downloads do not need (``--help``, ``--version``,
``--list-extractors``, …) are allowed here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import falcon

from .. import bytecode, errors
from ..engine.credentials import masked_cli
from ..engine.options import Context, option_value, refusal, split_options
from ..runtime import Runtime
from . import sse
from .requests import json_object
from .schemas import error, json_body

log = logging.getLogger(__name__)

# The console's partial files and working directory: in the temp folder, where no request
# names files (a download's temp folder is its item id).
CONSOLE_TEMP = "console"
MAX_LINE = 64 * 1024
QUEUE_LINES = 2000
MAX_BATCH = 200
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def refused_options(argv: list[str]) -> list[str]:
    """The options in ``argv`` that the terminal refuses (long names, in order)."""
    refused: list[str] = []
    for name, option, tokens in split_options(argv, strict=False):
        if option is not None:
            value = option_value(tokens) if option.takes_value() else None
            if refusal(name, option, value, Context.CONSOLE) is not None:
                refused.append(name)
    return list(dict.fromkeys(refused))


def parse_command(body: dict[str, Any]) -> list[str]:
    command = body.get("command")
    if not isinstance(command, str) or not command.strip():
        raise errors.invalid("command is required: a string of yt-dlp arguments.")
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise errors.invalid(f"Cannot split the command: {exc}.") from None
    if argv and argv[0] in {"yt-dlp", "yt_dlp"}:
        argv = argv[1:]  # "yt-dlp --version" means "--version"
    refused = refused_options(argv)
    if refused:
        raise errors.invalid(
            "These options are not allowed in the terminal: " + ", ".join(refused) + ".",
            blocked_options=refused,
        )
    return argv


# --- the process -------------------------------------------------------------------------


def _put(out: queue.Queue[tuple[str, str | None]], item: tuple[str, str | None],
         stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            out.put(item, timeout=sse.POLL_SECONDS)
            return True
        except queue.Full:  # the client reads slowly: yt-dlp waits on its pipe meanwhile
            continue
    return False


def _pump(pipe: IO[bytes], kind: str, out: queue.Queue[tuple[str, str | None]],
          stop: threading.Event) -> None:
    """Lines of ``pipe`` (split at ``\\n`` and ``\\r``, for progress lines) into ``out``."""
    carry = b""
    try:
        while not stop.is_set():
            data = pipe.read1(65536)  # type: ignore[attr-defined]
            if not data:
                break
            *lines, carry = _LINE_BREAK.split(carry + data)
            if len(carry) > MAX_LINE:
                lines.append(carry)
                carry = b""
            for line in lines:
                if not _put(out, (kind, line.decode("utf-8", "replace")), stop):
                    return
        if carry:
            _put(out, (kind, carry.decode("utf-8", "replace")), stop)
    except (OSError, ValueError):  # the pipe broke: the output is over
        pass
    finally:
        with contextlib.suppress(OSError):
            pipe.close()  # this thread's own: closing it from another would wait on a read
        _put(out, (kind, None), stop)


def _output(kind: str, line: str) -> bytes:
    return sse.event("output", {"type": kind, "line": line})


class _Process:
    """One yt-dlp run: its process group, and its output lines through two pump threads."""

    def __init__(self, argv: list[str], home: Path, temp: Path) -> None:
        self.argv = argv
        self.home, self.temp = home, temp
        self.proc: subprocess.Popen[bytes] | None = None
        self.out: queue.Queue[tuple[str, str | None]] = queue.Queue(QUEUE_LINES)
        self.stop_pumps = threading.Event()
        self.open_pipes = 0

    def start(self) -> str | None:
        """Start yt-dlp; the reason when it cannot be started."""
        log.info("terminal: yt-dlp %s", masked_cli(shlex.join(self.argv)))
        try:
            self.temp.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.proc = subprocess.Popen(
                [sys.executable, "-I", *bytecode.inherited(), "-m",
                 "appliance.engine.contained_cli", str(self.home), str(self.temp)],
                cwd=self.temp, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"},
            )
            with self.proc.stdin as arguments:  # type: ignore[union-attr]
                arguments.write(json.dumps(self.argv).encode())
        except OSError as exc:
            return f"Cannot start yt-dlp: {exc}"
        for pipe, kind in ((self.proc.stdout, "stdout"), (self.proc.stderr, "stderr")):
            threading.Thread(target=_pump, args=(pipe, kind, self.out, self.stop_pumps),
                             daemon=True, name=f"terminal-{kind}-{self.proc.pid}").start()
            self.open_pipes += 1
        return None

    def next_chunk(self, timeout: float) -> bytes:
        """The output events waiting (up to a batch), after waiting up to ``timeout``."""
        chunk = bytearray()
        try:
            item = self.out.get(timeout=timeout)
        except queue.Empty:
            return b""
        for taken in range(1, MAX_BATCH + 1):
            kind, line = item
            if line is None:
                self.open_pipes -= 1
            else:
                chunk += _output(kind, line)
            if taken == MAX_BATCH:
                break
            try:
                item = self.out.get_nowait()
            except queue.Empty:
                break
        return bytes(chunk)

    def wait(self, watch: sse.Watch) -> int | None:
        """The exit code; None when the stream must end first."""
        assert self.proc is not None
        while True:
            try:
                return self.proc.wait(timeout=sse.POLL_SECONDS)
            except subprocess.TimeoutExpired:
                if watch.should_end():
                    return None

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        self.stop_pumps.set()
        proc = self.proc
        if proc is None:
            return
        # Only while yt-dlp is not reaped: after that its pid (the group id) may be reused.
        if proc.poll() is None:
            self.kill()
            log.info("terminal: yt-dlp (pid %s) killed: the client left or the service is "
                     "stopping", proc.pid)
        proc.wait()  # the pump threads see the end of their pipes and close them


def _run(argv: list[str], runtime: Runtime, watch: sse.Watch) -> Iterator[bytes]:
    settings = runtime.settings
    process = _Process(argv, settings.download_path, settings.temp_path / CONSOLE_TEMP)
    try:
        yield sse.HELLO
        watch.wrote()
        failure = process.start()
        if failure is not None:
            yield _output("stderr", failure) + sse.event("close", {"exitcode": -1})
            return
        deadline = time.monotonic() + settings.console_timeout
        timed_out = False
        while process.open_pipes:  # after a kill too: what was written before still comes
            if watch.should_end():
                return  # finally: the process group is killed
            if not timed_out and time.monotonic() >= deadline:
                process.kill()
                timed_out = True
            chunk = process.next_chunk(sse.POLL_SECONDS)
            if chunk:
                yield chunk
                watch.wrote()
            elif watch.ping_due():
                yield sse.PING
                watch.wrote()
        exitcode = process.wait(watch)
        if exitcode is None:
            return
        if timed_out:
            yield _output("stderr", f"Stopped: the command ran longer than "
                                    f"{settings.console_timeout:g} s (YTP_CONSOLE_TIMEOUT).")
        yield sse.event("close", {"exitcode": exitcode})
    finally:
        process.close()


class Terminal:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self.runtime.settings.console_enabled:
            raise errors.AppError("Console feature is disabled.", errors.FORBIDDEN)
        argv = parse_command(json_object(req, self.runtime.settings.max_body))
        slots = sse.open_stream(self.runtime)
        sse.respond(resp, _run(argv, self.runtime, sse.Watch(req, self.runtime)), slots)


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/system/terminal", Terminal(runtime))


# --- OpenAPI (the rule: appliance/api/openapi.py) ----------------------------------------

PATHS: dict[str, dict[str, Any]] = {
    "/api/system/terminal": {"post": {
        "tags": ["system"],
        "operationId": "terminal",
        "summary": "Run yt-dlp with the given arguments; stream its output (Server-Sent Events)",
        "description": "Only with YTP_CONSOLE_ENABLED=true. The command is split like a shell "
                       "would but never run by one: yt-dlp's command line with `--ignore-config "
                       "<arguments>`, saving to the download folder, in an isolated "
                       "interpreter that refuses any write outside the download and temp "
                       "folders (a leading `yt-dlp` word is dropped). `text/event-stream`: "
                       "`output` events `{\"type\": \"stdout\" "
                       "| \"stderr\", \"line\"}` (progress lines split at carriage returns), "
                       "then `close` `{\"exitcode\": N}` (negative: killed by that signal; -1: "
                       "could not start). The process is killed when the client leaves, when "
                       "the service stops, or after YTP_CONSOLE_TIMEOUT seconds. Refused "
                       "(400, listed in `blocked_options`): options that run programs, read or "
                       "write files outside the download folder or load other configuration "
                       "(`--exec`, `--config-locations`, `--batch-file`, `--cookies`, "
                       "`--paths`, `--js-runtimes`, `--alias`, an output template outside the "
                       "download folder, …). Counts against YTP_MAX_STREAMS like the log "
                       "stream.",
        "requestBody": json_body({
            "type": "object", "required": ["command"],
            "properties": {"command": {"type": "string", "minLength": 1,
                                       "examples": ["--version", "-F https://example.com/v"]}},
        }),
        "responses": {
            "200": {"description": "The event stream.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}}},
            "400": error("No command, a command that cannot be split (bad quoting), or "
                         "refused options (`blocked_options`)."),
            "403": error("The console is disabled (YTP_CONSOLE_ENABLED=false)."),
            "503": error("Too many live streams are open (Retry-After)."),
        },
    }},
}
