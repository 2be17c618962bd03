"""The download process: a warm yt-dlp that runs one job at a time for the engine.

Forked by the zygote (``python -m appliance.engine.download_process --zygote FD``, see
``zygote`` and ``download_process``), or, when no zygote can be had, started without
``--zygote``; either way in a process group of its own, so that a cancel kills it and every
ffmpeg it started. It has imported yt-dlp and read the extractors' URL patterns before it
says ``ready``: that is the ~0.7 s of CPU a cold yt-dlp spends before its first byte, paid
while nobody waits.

Protocol: one JSON object per line. Commands arrive on a pipe (stdin when spawned); messages
leave on another (the file descriptor that was stdout when spawned; yt-dlp's own output goes
to stderr). A download asks before yt-dlp moves its files home (``moving``) and waits for the
engine's ``{"op": "move"}`` (``ProgressRelay.postprocessor_hook``).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import logging
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, BinaryIO, NoReturn
from urllib.parse import unquote

import yt_dlp
from yt_dlp.extractor import get_info_extractor
from yt_dlp.postprocessor.metadataparser import MetadataParserPP
from yt_dlp.utils import DownloadError, url_basename

from .. import cpu_share
from ..outbound import every_connection_checked
from ..systemd import stderr_formatter
from . import command_line_secrets, rate_limits, url_matching, zygote
from .archive import archive_id
from .containment import (
    Containment,
    OutsideDownloadFolder,
    cache_dir,
    contained,
    guard_writes,
    valid_text,
)
from .credentials import COOKIES, without_credentials
from .fragment_gaps import FragmentsSkipped
from .media_check import FinishedFiles, NotMedia
from .move_check import STARTING_SIDECARS, FolderMarkCheck, KeptBack, StartingSidecars
from .ytdlp_tuning import (
    CONSOLE_PROGRESS_DELTA,
    YoutubeDL,
    extract_info,
    new_ydl,
    parsed_options,
    warm_up,
)

log = logging.getLogger("appliance.child")

# The hook may fire ~1,000 times a second; the engine needs at most two a second per item.
PROGRESS_INTERVAL = 0.5
# An item keeps the scalar fields of its info (what conditions and NFO files read), never the
# big nested ones (formats, thumbnails, subtitles).
MAX_TEXT = 5000
MAX_LIST = 50


class Channel:
    def __init__(self, fd: int, commands: queue.Queue[dict[str, Any]] | None = None) -> None:
        self._out = os.fdopen(fd, "wb", buffering=0)
        self._commands = commands  # what the engine says, its answers to ``ask`` too
        # yt-dlp's fragment threads (-N) call the hooks and the logger at once: a pipe keeps
        # only writes of up to PIPE_BUF (4 KiB) whole, and a longer line interleaved with
        # another was no JSON to the service, which stopped the download.
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        """``message`` as one line of JSON, its text valid: a site's lone surrogate reached the
        service's database, which refused the item's every write, and the item never ended."""
        text = json.dumps(message, default=str, ensure_ascii=False)
        line = memoryview(valid_text(text).encode() + b"\n")
        with self._lock:
            while line:  # a write a signal interrupts writes only a part
                line = line[self._out.write(line):]

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send ``message`` and wait for the engine's answer (the next command it sends); at
        once ({}) where no engine answers (a job run in the caller's process)."""
        self.send(message)
        return {} if self._commands is None else self._commands.get()


# yt-dlp's words for a wait it chose (its screen lines reach the logger's debug): the wait for
# a scheduled stream (--wait-for-video), the sleep before a download (--sleep-interval, or as
# the site requires) and between retries (--retry-sleep). Whole lines only: a site's text
# (a title in "Destination: ...") must not pass for a wait of days, which would hide a stall.
DECLARED_WAIT = re.compile(
    r"\[wait\] Waiting for (?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d) - Press Ctrl\+C to try now"
    r"|(?:\[[\w:.-]+\] )?Sleeping (?P<sleep>\d+(?:\.\d+)?) seconds "
    r"(?:as required by the site)?\.\.\.")


def declared_wait(msg: str) -> float | None:
    """The seconds of a wait yt-dlp says it starts in ``msg``; None if it says none."""
    found = DECLARED_WAIT.fullmatch(msg.strip())
    if found is None:
        return None
    if found["h"] is not None:
        return int(found["h"]) * 3600 + int(found["m"]) * 60 + int(found["s"])
    return float(found["sleep"])


class _Logger:
    """yt-dlp's logger: warnings and errors go to the engine with the job's id, and so does a
    wait yt-dlp chose: silent, it would look stalled to the engine (downloading.py)."""

    def __init__(self, channel: Channel, job: str) -> None:
        self.channel, self.job = channel, job
        self.fragments = FragmentsSkipped()

    def debug(self, msg: str) -> None:
        seconds = declared_wait(msg)
        if seconds is not None:
            self.channel.send({"type": "waiting", "job": self.job, "seconds": seconds})
        self.fragments.hear(msg)

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        self.channel.send({"type": "log", "job": self.job, "level": "warning", "msg": msg})

    def error(self, msg: str) -> None:
        self.channel.send({"type": "log", "job": self.job, "level": "error", "msg": msg})


class ProgressRelay:
    """Forwards yt-dlp's hook calls: every state change, otherwise at most every 0.5 s, and
    the newest one held back is sent when its 0.5 s are up. Without that last send a download
    whose bytes came in one burst and then stopped (a stalled server, the tail of a fragment)
    showed the bytes, speed and ETA of the burst's first call, up to 0.5 s old, until more
    bytes came: the item said 40 KB at 1 MB/s where 300 KB had arrived and nothing since.
    ``close`` (the job's end) drops what is held: nothing of it comes after the result."""

    def __init__(self, channel: Channel, job: str) -> None:
        self.channel, self.job = channel, job
        self.last_status = ""
        self.last_sent = 0.0
        # The lock orders the sends: a held message never follows a newer one.
        self._lock = threading.Condition()
        self._held: dict[str, Any] | None = None
        self._sender: threading.Thread | None = None
        self._closed = False

    def download_hook(self, d: dict[str, Any]) -> None:
        status = d.get("status", "")
        message = {
            "type": "progress",
            "job": self.job,
            "status": status,
            "downloaded_bytes": d.get("downloaded_bytes"),
            "total_bytes": d.get("total_bytes") or d.get("total_bytes_estimate"),
            "speed": d.get("speed"),
            "eta": d.get("eta"),
            "filename": d.get("filename"),
        }
        with self._lock:
            now = time.monotonic()
            if status == self.last_status and now - self.last_sent < PROGRESS_INTERVAL:
                self._hold(message)
                return
            self._held = None
            self.last_status, self.last_sent = status, now
            self.channel.send(message)

    def _hold(self, message: dict[str, Any]) -> None:
        self._held = message
        if self._sender is None and not self._closed:
            self._sender = threading.Thread(target=self._send_held, name="progress-held",
                                            daemon=True)
            self._sender.start()
        self._lock.notify()

    def _send_held(self) -> None:
        with self._lock:
            while not self._closed:
                if self._held is None:
                    self._lock.wait()
                    continue
                due = self.last_sent + PROGRESS_INTERVAL - time.monotonic()
                if due > 0:
                    self._lock.wait(due)
                    continue
                message, self._held = self._held, None
                self.last_sent = time.monotonic()
                self.channel.send(message)

    def close(self) -> None:
        with self._lock:
            self._closed, self._held = True, None
            self._lock.notify()
        if self._sender is not None:
            self._sender.join()

    def postprocessor_hook(self, d: dict[str, Any]) -> None:
        with self._lock:
            if d.get("status") == "started" and self.last_status != "postprocessing":
                self.last_status, self._held = "postprocessing", None
                self.channel.send({"type": "progress", "job": self.job,
                                   "status": "postprocessing",
                                   "postprocessor": d.get("postprocessor")})
        if d.get("status") == "started" and d.get("postprocessor") == "MoveFiles":
            # The files go home now, the sidecars first. The engine says when: a stop asked
            # for until then kills this process before a file moved, one asked for after it
            # (a cancel, a delete) lets the whole move end (runs.Run.request_stop). Said and
            # gone on at once, a stop that came before the engine read it killed the move
            # part way, what it had moved left home, no item's.
            self.channel.ask({"type": "moving", "job": self.job})


# --parse-metadata and --replace-in-metadata name their action by one of these objects, which
# the parser checks by identity: a deep copy must keep them (a copy made the parser refuse).
_KEEP = {id(action): action for action in vars(MetadataParserPP.Actions).values()}


def _params(job: dict[str, Any], channel: Channel, relay: ProgressRelay | None,
            finished: FinishedFiles | None = None) -> dict[str, Any]:
    params = copy.deepcopy(parsed_options(tuple(job.get("args") or ())), dict(_KEEP))
    params.update(
        quiet=True,
        no_warnings=False,
        noprogress=True,
        progress_delta=CONSOLE_PROGRESS_DELTA,
        color={"stdout": "never", "stderr": "never"},
        logger=_Logger(channel, job["job"]),
        # parse_options defaults to ignoring download errors; the engine must see them.
        ignoreerrors=False,
        paths={"home": job["home"], "temp": job["temp"],
               **dict.fromkeys(STARTING_SIDECARS, job["temp"])},
    )
    outtmpl = dict(params.get("outtmpl") or {})
    if job.get("template") or "default" not in outtmpl:
        outtmpl["default"] = job.get("template") or job.get("default_template")
    params["outtmpl"] = outtmpl
    if job.get("cookiefile"):
        params["cookiefile"] = job["cookiefile"]
    if job.get("js_runtimes"):  # the service's choice; requests cannot name one
        params["js_runtimes"] = job["js_runtimes"]
    if relay is not None:
        params["progress_hooks"] = [relay.download_hook]
        params["postprocessor_hooks"] = [relay.postprocessor_hook]
    if finished is not None:  # after the relay's: the engine hears of the file first
        params.setdefault("progress_hooks", []).append(finished.hook)
    return params


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def summarize(info: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_") or value is None or key == COOKIES:
            continue
        if isinstance(value, str):
            summary[key] = value[:MAX_TEXT]
        elif _scalar(value) or (
            isinstance(value, list) and len(value) <= MAX_LIST and all(map(_scalar, value))
        ):
            summary[key] = value
    entries = info.get("entries")
    if info.get("_type") in {"playlist", "multi_video"} and entries is not None:
        summary["_type"] = "playlist"
        summary["entries"] = [
            {
                "url": e.get("url") or e.get("webpage_url"),
                # an entry's texts are an item's as much as its playlist's (MAX_TEXT)
                "title": str(e.get("title") or "")[:MAX_TEXT],
                "id": str(e.get("id") or "")[:MAX_TEXT],
                "ie_key": e.get("ie_key") or e.get("extractor_key") or "",
            }
            for e in entries
            if e and (e.get("url") or e.get("webpage_url"))
        ]
    return summary


def containment_for(job: dict[str, Any], params: dict[str, Any],
                    secrets: command_line_secrets.Secrets = command_line_secrets.NONE
                    ) -> Containment:
    """The folders this job may write in, and the ``secrets`` no program it starts may name;
    refuses a home outside the download folder (a symlinked sub-folder that leads
    elsewhere, say)."""
    root = job.get("root") or ""
    containment = Containment(job["home"], job["temp"], root=root, extra=(cache_dir(params),),
                              secrets=secrets)
    if root and not Containment(root, "").holds(job["home"]):
        raise OutsideDownloadFolder(
            f"Refused: the folder {job['home']!r} leads outside the download folder {root!r}.")
    return containment


@contextlib.contextmanager
def contained_ydl(job: dict[str, Any], params: dict[str, Any]) -> Iterator[YoutubeDL]:
    """A YoutubeDL for ``job`` whose every write is held inside the job's folders, and whose
    programs never see the person's secrets (``command_line_secrets``)."""
    secrets = command_line_secrets.of_job(job.get("url") or "", params)
    params = command_line_secrets.native_downloads(params, secrets)
    containment = containment_for(job, params, secrets)
    try:
        with contained(containment), new_ydl(params, containment) as ydl:
            yield ydl
    finally:
        # yt-dlp may have reported a refused write as a mere warning, or as an error of its
        # own that does not say why ("Cannot write video subtitles file"): the refusal is
        # the job's end, and its reason.
        if containment.refused:
            raise OutsideDownloadFolder(
                f"Refused: {containment.refused[0]!r} is outside the download folder; the "
                f"job was stopped.")


def run_extract(job: dict[str, Any], channel: Channel) -> dict[str, Any]:
    params = _params(job, channel, None)
    params.update(extract_flat="in_playlist", skip_download=True, lazy_playlist=False)
    with contained_ydl(job, params) as ydl:
        info = extract_info(ydl, job["url"], download=False)
        # Whole, credentials too: the download it is handed to needs a format's own
        # headers (some sites' tokens); the engine takes them out of what it shows.
        info = yt_dlp.YoutubeDL.sanitize_info(info)
    result = {"summary": summarize(info)}
    if job.get("full"):
        result["info"] = info
    return result


def run_download(job: dict[str, Any], channel: Channel) -> dict[str, Any]:
    relay = ProgressRelay(channel, job["job"])
    try:
        return _download(job, channel, relay)
    finally:
        relay.close()


def _download(job: dict[str, Any], channel: Channel, relay: ProgressRelay) -> dict[str, Any]:
    finished = FinishedFiles()
    with contained_ydl(job, _params(job, channel, relay, finished)) as ydl:
        # the folder the files move into: its mark when it has one, its disk's state always
        mark = job.get("folder_mark") or {"folder": job.get("root"), "token": None}
        check = FolderMarkCheck(**mark) if mark["folder"] else None
        ydl.add_post_processor(StartingSidecars(), when="before_dl")
        if check is not None:
            ydl.add_post_processor(check, when="post_process")
        try:
            if job.get("info"):
                # The info read moments ago for this item: formats are chosen again with this
                # job's options, but the site is not asked twice (as --load-info-json does).
                info = ydl.process_ie_result(job["info"], download=True)
            else:
                info = extract_info(ydl, job["url"], download=True)
        except BaseException:
            if check is not None:
                check.take_back()
            raise
        # What the item keeps (its owner's): its URLs whole (a signed thumbnail the API
        # fetches for a client), without the credentials; .info.json masks them as well.
        info = without_credentials(yt_dlp.YoutubeDL.sanitize_info(info)) or {}
    downloads = info.get("requested_downloads") or [{}]
    filepath = downloads[-1].get("filepath") or info.get("filepath") or ""
    if filepath and os.path.isfile(filepath):
        answer = {"summary": summarize(info), "filepath": filepath, "media": finished.report()}
        if check is not None and check.found():
            answer["found"] = True
        if gaps := ydl.params["logger"].fragments.said():
            answer["gaps"] = gaps
        return answer
    # Ended without an error and without a file: the item was "finished", its file named
    # (--skip-download) or not, and nobody told why.
    return {"summary": summarize(info), "filepath": "", "skipped": nothing_downloaded(ydl)}


# yt-dlp's params that make it read an item and download nothing: --simulate and the options
# that only print (--print, -j, --get-url: "simulate"), --skip-download, the lists (-F, ...).
NOT_DOWNLOADING = ("simulate", "skip_download", "listformats", "listsubtitles",
                   "list_thumbnails")


def nothing_downloaded(ydl: YoutubeDL) -> str:
    """Why a download that raised nothing left no file, as plainly as it can be told."""
    if ydl.passed_over:
        return f"Not downloaded: {ydl.passed_over.rstrip(' .')}."
    if any(ydl.params.get(name) for name in NOT_DOWNLOADING):
        return ("Not downloaded: its options tell yt-dlp not to (--skip-download, --simulate, "
                "or one that only prints or lists: --print, -j, --get-url, -F, ...).")
    return ("Not downloaded: yt-dlp wrote no file and gave no error (an option such as "
            "--max-filesize or --min-filesize may have passed it over).")


def generic_id(url: str) -> str:
    """As yt-dlp's generic extractor names a file (its ``_generic_id``, which the lazy
    extractor class does not expose)."""
    return unquote(os.path.splitext(url_basename(url))[0])


def archive_id_for(url: str) -> dict[str, Any]:
    """The archive id yt-dlp would record for ``url``, found without touching the network."""
    key = video_id = None
    try:
        # An extractor's suitable() parses the URL too ("http://[::1" raised in one, and the
        # whole answer was lost).
        key = url_matching.extractor_key(url)
        if key is not None:
            # The generic extractor names a direct file by its basename; others match an id.
            video_id = generic_id(url) if key == "Generic" else \
                get_info_extractor(key).get_temp_id(url)
    except Exception as exc:  # an extractor's own URL parsing: report, never crash
        return {"url": url, "id": None, "ie_key": key, "archive_id": None,
                "error": f"{type(exc).__name__}: {exc}"}
    if key is None:
        return {"url": url, "id": None, "ie_key": None, "archive_id": None,
                "error": "no extractor matches this URL"}
    return {"url": url, "id": video_id, "ie_key": key, "archive_id": archive_id(key, video_id, url),
            "error": None if video_id else "the URL does not name a video id"}


def run_archive_ids(job: dict[str, Any], channel: Channel) -> dict[str, Any]:
    return {"ids": [archive_id_for(url) for url in job.get("urls") or []]}


def run_call(job: dict[str, Any], channel: Channel) -> dict[str, Any]:
    """A function of the service's own code (``target``: ``appliance.module:function``) run
    here instead of in the service, whose threads share one interpreter lock with the API:
    keyword arguments and the answer are JSON. The engine knows nothing of the function; the
    room below which it lives names it."""
    module, _, name = str(job.get("target") or "").partition(":")
    if not module.startswith("appliance.") or not name.isidentifier():
        raise ValueError(f"not a function of the service: {job.get('target')!r}")
    function = getattr(importlib.import_module(module), name)
    return {"value": function(**(job.get("kwargs") or {}))}


RUNNERS = {"extract": run_extract, "download": run_download, "archive_ids": run_archive_ids,
           "call": run_call}


def read_commands(stream: BinaryIO, commands: queue.Queue[dict[str, Any]]) -> None:
    """Read commands on a thread of their own, so that the end of the stream -- the engine
    died, even by SIGKILL -- is seen at once, mid-download, and takes the process group with
    it."""
    for line in stream:
        commands.put(json.loads(line))
    os.killpg(0, signal.SIGKILL)


def start_reading(stream: BinaryIO) -> queue.Queue[dict[str, Any]]:
    commands: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=read_commands, args=(stream, commands), daemon=True).start()
    return commands


def serve(channel: Channel, commands: queue.Queue[dict[str, Any]]) -> NoReturn:
    while True:
        command = commands.get()
        op = command.get("op")
        if op == "exit":
            # Not a normal return: the reader thread is blocked in stdin, and interpreter
            # shutdown would abort on its buffer lock.
            os._exit(0)
        job = command.get("job", "")
        try:
            result = RUNNERS[op](command, channel)
        except NotMedia as exc:  # (its message quotes the site: no errno of the service's)
            channel.send({"type": "error", "job": job, "message": str(exc), "not_media": True})
        except DownloadError as exc:
            message = str(exc).removeprefix("ERROR: ")
            # a 429's Retry-After, which yt-dlp's message leaves out
            waits = rate_limits.asked_wait(exc.exc_info[1] if exc.exc_info else None)
            channel.send({"type": "error", "job": job,
                          "message": rate_limits.marked(message, waits)})
        except KeptBack as exc:
            channel.send({"type": "error", "job": job, "message": exc.msg, exc.flag: True})
        except Exception as exc:
            log.exception("job %s failed", job)
            channel.send({"type": "error", "job": job, "message": f"{type(exc).__name__}: {exc}"})
        else:
            channel.send({"type": "result", "job": job, **result})


def prepare() -> None:
    """What a download process does once, before its first job (the zygote, for all the
    processes it forks)."""
    guard_writes()
    every_connection_checked("downloads")
    yield_cpu()
    warm_up()  # no job yet: what it imports is cached (appliance.bytecode)
    # The audit hook refuses writes outside a job's folders; Python's own bytecode cache
    # (a lazy import during a job) is not one of them.
    sys.dont_write_bytecode = True


def yield_cpu() -> None:
    """Below the service in the CPU's queue (appliance.cpu_share).

    A niceness alone is not enough: where the kernel shares the CPU between sessions first
    (autogroup, on by default in Debian's and Raspberry Pi OS's kernels), a download process,
    leader of a session of its own, got as much CPU as the whole service whatever its
    niceness. So its session gets the same niceness."""
    niceness = cpu_share.lower_this_process()
    with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as session:
        session.write(str(niceness))


def run(channel: Channel, commands: queue.Queue[dict[str, Any]]) -> NoReturn:
    try:
        channel.send({"type": "ready", "pid": os.getpid()})
    except BrokenPipeError:  # the service is gone: nothing to say, nobody to say it to
        os._exit(0)
    serve(channel, commands)


def run_forked(commands_fd: int, messages_fd: int) -> None:
    """A process the zygote forked: warm already, it only starts reading its commands."""
    commands = start_reading(os.fdopen(commands_fd, "rb"))
    run(Channel(messages_fd, commands), commands)


def main() -> None:
    # Keep the real stdout for messages; point fd 1 at stderr so nothing yt-dlp prints can
    # corrupt the protocol.
    messages = os.dup(1)
    os.dup2(2, 1)
    handler = logging.StreamHandler()
    handler.setFormatter(stderr_formatter("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    if sys.argv[1:2] == ["--zygote"]:
        os.close(messages)
        prepare()
        zygote.serve(socket.socket(fileno=int(sys.argv[2])), run_forked)
    # Reading commands starts before the warm-up, so a service that dies meanwhile (even by
    # SIGKILL) takes this process with it at once, not after a second of warming up.
    commands = start_reading(sys.stdin.buffer)
    prepare()
    run(Channel(messages, commands), commands)

