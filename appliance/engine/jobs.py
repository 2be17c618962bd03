"""The engine's jobs in pooled yt-dlp processes that are not downloads: info for a URL, a
flat listing for a task, the archive ids of URLs, a function of the service's own code that
is better run outside the service (``call``), yt-dlp's params for options (``converted``), the
command line an add would run — and the per-item temp folder every job works in.

Part of ``DownloadEngine`` (engine.py), under its owners and rules: a job runs on the calling
thread with a worker of its own, bounded by the extract timeout.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

from ..errors import UNAVAILABLE, AppError, invalid
from ..store import Item
from ..store.records import new_id
from .credentials import without_credentials
from .failures import bare, explain
from .js_runtime import ytdlp_param
from .plans import Plan
from .requests import parse_add_request
from .workers import Worker, WorkerDied

log = logging.getLogger(__name__)

CONVERT = "appliance.engine.options:convert_answer"
# yt-dlp parses options in milliseconds on a ready process (its start is bounded apart, by
# the pool): a conversion that takes longer is a hung process, and a save waits on it.
CONVERT_TIMEOUT = 15.0


class Jobs:
    """Pooled non-download jobs and temp folders for ``DownloadEngine``."""

    def _archive_ids(self, urls: list[str]) -> list[dict[str, Any]]:
        item = Item(id=new_id(), url=urls[0])
        try:
            return self.run_job("archive_ids", item, urls=urls).get("ids") or []
        finally:
            self._remove_temp(item)

    def command_line(self, payload: Any) -> str:
        """The yt-dlp command an add request would run (``POST /api/yt-dlp/command/``)."""
        request = parse_add_request(payload, self.presets, self.dl_fields)
        item = self._new_item(request)
        plan = self.planner.plan(item)
        cookie_file = self.settings.temp_path / item.id / "cookies.txt" if plan.cookies else None
        return plan.command_line(item.url, self.settings, cookie_file)

    def extract_url(self, url: str, preset: str, cli_args: list[str]) -> dict[str, Any]:
        """Full info for ``url`` (``GET /api/yt-dlp/url/info``, a channel's metadata),
        through a warm process; without the credentials yt-dlp put in it."""
        item = Item(id=new_id(), url=url, preset=preset, cli=shlex.join(cli_args))
        return without_credentials(
            self._read_url(item, "could not read the URL's info", full=True).get("info") or {})

    def list_entries(self, url: str, preset: str) -> dict[str, Any]:
        """What yt-dlp lists behind ``url`` without reading each entry (a flat playlist:
        title, id and ``entries`` of url/title/id/ie_key; a single video's summary
        otherwise), through a warm process. For scheduled tasks."""
        item = Item(id=new_id(), url=url, preset=preset)
        return self._read_url(item, "could not list the URL's entries").get("summary") or {}

    def _read_url(self, item: Item, failure: str, **extra: Any) -> dict[str, Any]:
        """An ``extract`` job for a throwaway item; yt-dlp's own reason (or ``failure``) as
        an AppError when it cannot read the URL, said as a failed download says it."""
        try:
            result = self.run_job("extract", item, **extra)
        finally:
            self._remove_temp(item)
        if result.get("type") == "error":
            raise AppError(explain(result.get("message") or failure, self.settings),
                           "DOWNLOAD_ERROR")
        return result

    def call(self, target: str, seconds: float, /, **kwargs: Any) -> Any:
        """What ``target`` (``appliance.module:function``) returns for ``kwargs`` (JSON both
        ways), run in a pooled process: CPU-bound work (reading a feed) that would otherwise
        hold the interpreter lock the API's threads need. AppError when the function raised;
        WorkerDied when the process died or gave no answer within ``seconds``."""
        worker = self.pool.acquire()
        command = {"op": "call", "job": new_id(), "target": target, "kwargs": kwargs}
        result = self._run_on(worker, command, seconds)
        if result.get("type") == "error":
            raise AppError(result.get("message") or f"{target} failed", "DOWNLOAD_ERROR")
        return result.get("value")

    def converted(self, cli: str) -> dict[str, Any]:
        """yt-dlp's params for the options ``cli`` (``options.convert``), made by yt-dlp in a
        download process: the only place that judges a value's meaning (``--retries lots``).
        400 with yt-dlp's reason when it refuses one; 503 when no process answers (none could
        be started, within the pool's start bound, or it died): never a wait without end."""
        try:
            answer = self.call(CONVERT, CONVERT_TIMEOUT, cli=cli)
        except (WorkerDied, OSError) as exc:  # OSError: a process could not even be spawned
            raise AppError(f"yt-dlp could not check the options: {exc}", UNAVAILABLE) from None
        if "error" in answer:
            raise invalid(answer["error"])
        return answer["params"]

    def run_job(
        self, op: str, item: Item, *, register: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Run an extraction job in a pooled process, bounded by the extract timeout."""
        worker = self.pool.acquire()
        try:
            if register is not None:
                with self._lock:
                    stopping = self._stopping
                    if not stopping:
                        self._extracting[register] = worker
                if stopping:
                    raise WorkerDied("the engine is stopping")
            command = {**self._job_command(op, item), **extra}
        except BaseException:
            # Nothing ran on it (the engine stops, or the job's folder, temp folder or cookie
            # file cannot be made): it goes back. Kept, the pool counted it busy for good,
            # and so kept its zygote and idle processes for good.
            self.pool.release(worker)
            raise
        return self._run_on(worker, command, self.settings.extract_info_timeout)

    def _run_on(self, worker: Worker, command: dict[str, Any], timeout: float
                ) -> dict[str, Any]:
        """``command`` on an acquired ``worker``, which goes back to the pool (or is reaped
        when it died)."""
        try:
            result = worker.run(command, self._log_child, timeout=timeout)
        except WorkerDied:
            self.pool.discard(worker)
            raise
        self.pool.release(worker)
        return result

    def _job_command(self, op: str, item: Item, plan: Plan | None = None) -> dict[str, Any]:
        plan = plan or self.planner.plan(item)
        command: dict[str, Any] = {
            "op": op,
            "job": item.id,
            "url": item.url,
            "args": plan.args,
            "root": str(plan.root),
            "home": str(plan.home),
            "temp": str(self._temp_dir(item)),
            "template": plan.template,
            "default_template": self.settings.output_template,
        }
        js_runtimes = ytdlp_param()
        if js_runtimes:
            command["js_runtimes"] = js_runtimes
        if plan.cookies:
            command["cookiefile"] = str(self._write_cookies(item, plan.cookies))
        return command

    def _log_child(self, message: dict[str, Any]) -> None:
        if message.get("type") == "log":
            level = logging.ERROR if message.get("level") == "error" else logging.WARNING
            # yt-dlp's own line, as the item's error is: without the repr a person cannot
            # read ("(caused by <HTTPError 404: Not Found>)"), and on one line (its progress
            # bar's carriage return showed as \x0d)
            said = bare(" ".join(str(message.get("msg")).split()))
            log.log(level, "yt-dlp [%s]: %s", message.get("job"), said, extra={"announce": False})

    def _temp_dir(self, item: Item) -> Path:
        path = self.settings.temp_path / item.id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _write_cookies(self, item: Item, cookies: str) -> Path:
        path = self._temp_dir(item) / "cookies.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(cookies)
        return path

    def _remove_temp(self, item: Item) -> None:
        shutil.rmtree(self.settings.temp_path / item.id, ignore_errors=True)
