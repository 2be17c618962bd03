"""The tasks room's face to the API: checked task records, runs on demand, marks, previews.

Fields are checked in ``fields.py`` with the policy that checks an item's, so a task cannot
queue what a person could not.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import events
from ..clock_steps import ClockSteps
from ..config import SettingsHolder
from ..engine.engine import DownloadEngine
from ..engine.options import resolve_folder
from ..engine.requests import check_url
from ..engine.workers import WorkerDied
from ..errors import CONFLICT, INVALID_REQUEST, AppError, invalid, not_found
from ..events import EventBus
from ..files.fetch import fetch_image, policy
from ..store import ItemStore
from ..store.clock_steps import redate_finished
from ..store.collections import Collection
from ..store.records import Item
from ..store.tasks import DEFINITION_FIELDS, TaskStore
from .cron import staggered, time_zone
from .definition_records import Definitions
from .definitions import DefinitionHandler
from .fields import MAX_NAME, Context, check_name, check_task, flag
from .handlers import (
    FETCH_TIMEOUT,
    Entry,
    GenericTaskHandler,
    HandlerError,
    Handlers,
    Listing,
)
from .isolated import TARGET, Isolated, call_timeout, reading_handlers
from .metadata import write_metadata
from .runner import TaskRunner, batch_id
from .scheduler import TaskScheduler

log = logging.getLogger(__name__)

MAX_TASKS_AT_ONCE = 500
# Seconds a name inference may spend reading a feed (it runs in the request), and the
# listings of a request in all (names and marks): past them, the rest are ``task-{position}``
# and their marks are made by their first run, started at once. Without a bound for all, 500
# feeds of a slow site held the request 20 minutes (an hour and more when marked), and a
# client that gave up and asked again made every task twice.
NAME_TIMEOUT = 5.0
LISTINGS_TIMEOUT = 30.0


def _name_from(listing: Listing | None, position: int) -> str:
    """A task's name from its feed's title, else ``task-{position}``."""
    title = listing.title if listing is not None else ""
    try:
        return check_name(title[:MAX_NAME]) if title.strip() else f"task-{position}"
    except AppError:  # a title no name may be
        return f"task-{position}"


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name (n)`` when it is taken, within a name's 100 characters: a title of
    100 made ``… (2)`` of 104, which the task's every edit sent back was refused for."""
    unique, n = name, 2
    while unique in taken:
        suffix = f" ({n})"
        unique, n = f"{name[:MAX_NAME - len(suffix)].rstrip()}{suffix}", n + 1
    return unique


def _refusal(message: str, **extra: Any) -> AppError:
    """The contract's inspect failure: ``error`` and ``message`` say the same."""
    refusal = AppError(message, INVALID_REQUEST, **extra)
    refusal.extra["message"] = message
    return refusal


class TaskService:
    def __init__(self, settings: SettingsHolder, store: TaskStore, items: ItemStore,
                 engine: DownloadEngine, bus: EventBus) -> None:
        self._settings = settings
        self.store = store
        self.engine = engine
        self.bus = bus
        self.definitions = Definitions(
            Collection(items.entities.TaskDefinition, DEFINITION_FIELDS, "task definition"))
        self.definitions.on_change = functools.partial(self._config_changed, "task_definitions")
        reading = reading_handlers(lambda: self._settings.current.youtube_base_url,
                                   self.definitions.all)
        self.handlers = Handlers([*(Isolated(h, self._list_in_child) for h in reading),
                                  GenericTaskHandler(engine.list_entries)])
        self._items = items
        self.clock = ClockSteps()
        self._clock_lock = threading.Lock()
        self.runner = TaskRunner(store, items, engine, self.handlers, bus, self._announce,
                                 self._follow_clock)
        self.scheduler = TaskScheduler(
            store.all, store.some, self.runner.execute,
            zone=lambda: time_zone(self._settings.current.tasks_timezone),
            spread=lambda: self._settings.current.tasks_spread,
            concurrency=self._settings.current.tasks_concurrency,
            follow_clock=self._follow_clock,
        )
        self.scheduler.jobs.every(1).hours.do(self.prune)
        engine.presets.users.append(self._naming_preset)

    def _naming_preset(self, name: str) -> list[str]:
        return [f"task '{task['name']}'" for task in self.store.all() if task["preset"] == name]

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        interrupted = {e["task_id"] for e in self.store.interrupted()}
        self.prune()
        self.scheduler.start(interrupted)

    def stop(self) -> None:
        self.runner.stopping.set()
        self.scheduler.stop()

    def _follow_clock(self) -> None:
        """Finished downloads dated again after a forward step of the clock (the loop and
        each retention look; one at a time, so a step is applied once)."""
        with self._clock_lock:
            if (step := self.clock.step()) is not None:
                try:
                    moved = redate_finished(self._items, step)
                except BaseException:
                    self.clock.again(step)
                    raise
                log.info("%d finished download(s) dated %.0f s later", moved, step.seconds)

    def prune(self) -> None:
        removed = self.store.prune_executions(self._settings.current.executions_kept)
        if removed:
            log.info("removed %d old task execution(s)", removed)

    def _list_in_child(self, handler: str, url: str, preset: str, timeout: float
                       ) -> dict[str, Any]:
        """A reading handler's listing, run in a download process (``isolated.py``)."""
        settings = self._settings.current
        definitions = [d for d in self.definitions.all() if d["enabled"]] \
            if handler == DefinitionHandler.name else []
        try:
            return self.engine.call(
                TARGET, call_timeout(timeout, settings.extract_info_timeout), handler=handler,
                url=url, preset=preset, timeout=timeout, base_url=settings.youtube_base_url,
                definitions=definitions)
        except AppError as exc:  # the listing raised (a bug, or a parser's own failure)
            raise HandlerError(f"could not list {url[:200]}: {exc.message[:500]}") from None
        except WorkerDied as exc:  # killed at its time limit, or crashed
            raise HandlerError(f"could not list {url[:200]}: {exc}") from None

    # --- reads ------------------------------------------------------------------------

    def public(self, task: dict[str, Any]) -> dict[str, Any]:
        data = dict(task)
        data["next_run_at"] = self.scheduler.next_run_at(task["id"])
        data["running"] = self.runner.running(task["id"])
        return data

    def _task(self, task_id: int) -> dict[str, Any]:
        task = self.store.get(task_id)
        if task is None:
            raise not_found("Task not found.")
        return task

    def get(self, task_id: int) -> dict[str, Any]:
        return self.public(self._task(task_id))

    def page(self, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
        tasks, total = self.store.page(page, per_page)
        return [self.public(t) for t in tasks], total

    def items(self, task_id: int, offset: int, limit: int) -> tuple[list[Item], int]:
        """A page of the items the task queued, newest first, and how many there are."""
        return self.runner.items.batch_page(batch_id(self._task(task_id)), offset, limit)

    def schedules(self) -> list[dict[str, Any]]:
        return [
            {"task_id": t["id"], "name": t["name"], "timer": t["timer"],
             "last_run_at": t["last_run_at"], "last_status": t["last_status"],
             "next_run_at": self.scheduler.next_run_at(t["id"]),
             "running": self.runner.running(t["id"])}
            for t in self.store.all() if t["enabled"] and t["timer"]
        ]

    def validate(self, values: Any, *, partial: bool) -> dict[str, Any]:
        """The checked fields of a task body; its ``cli`` is left to ``_check_values``."""
        settings = self._settings.current
        return check_task(values, Context(settings.download_path, self.engine.presets),
                          partial=partial)

    def _check_values(self, tasks: list[dict[str, Any]]) -> None:
        """What the option table cannot judge, the options' values: yt-dlp's word, in a
        download process, once per distinct ``cli`` (an array of tasks mostly shares one)."""
        for cli in dict.fromkeys(t["cli"] for t in tasks if t.get("cli")):
            self.engine.converted(cli)

    # --- changes ----------------------------------------------------------------------

    def _config_changed(self, feature: str, action: str, data: dict[str, Any]) -> None:
        self.bus.publish(events.CONFIG_UPDATE,
                         {"feature": feature, "action": action, "data": data})

    def _announce(self, action: str, task: dict[str, Any]) -> dict[str, Any]:
        """``create``, ``update``, ``delete``, or ``start``: a run began (announced as an
        update with ``running`` true, so that clients show it without asking)."""
        if action == "delete":
            self.scheduler.changed(None, task["id"])
        elif action != "start":  # a run that begins leaves the plan as it is
            self.scheduler.changed(task, task["id"])
        public = self.public(task)
        self._config_changed("tasks", "update" if action == "start" else action, public)
        return public

    def create(self, body: Any) -> dict[str, Any] | list[dict[str, Any]]:
        """One task (an object) or several (an array: the first complete, the rest filled
        in from it; names inferred, timers staggered)."""
        many = isinstance(body, list)
        bodies = body if many else [body]
        if not bodies:
            raise invalid("At least one task is required.")
        if len(bodies) > MAX_TASKS_AT_ONCE:
            raise invalid(f"At most {MAX_TASKS_AT_ONCE} tasks at once.")
        first = self.validate(bodies[0], partial=False)
        tasks = [first]
        marks = [bodies[0].get("mark", False)]
        unnamed: list[int] = []
        for index, raw in enumerate(bodies[1:], start=1):
            if not isinstance(raw, dict) or not raw.get("url"):
                raise invalid(f"Task {index + 1}: url is required.")
            values = self.validate(raw, partial=True)
            tasks.append({**first, "name": "", "timer": staggered(first["timer"], index),
                          **values})
            if not values.get("name"):
                unnamed.append(index)
            marks.append(raw.get("mark", marks[0]))
        for index, mark in enumerate(marks):
            if not isinstance(mark, bool):
                raise invalid(f"Task {index + 1}: mark must be true or false.")
        self._check_values(tasks)
        # Every listing before anything is kept: the archive, which every download of the
        # preset reads, kept the lines of the first tasks of an array refused for a later
        # one. Each feed is read once (for the name and the marks), a few at once: read one
        # after the other, twice, a hundred feeds of a remote site held the request minutes.
        listings, late = self._listings(tasks, marks, set(unnamed))
        taken = self.store.names() | {t["name"] for t in tasks if t["name"]}
        for index in unnamed:
            tasks[index]["name"] = _unique(_name_from(listings.get(index), index + 1), taken)
            taken.add(tasks[index]["name"])
        for index in late:
            tasks[index]["mark_pending"] = True
        marked = [(index, listing) for index, listing in listings.items() if marks[index]]
        # The archive ids of every task's entries in one job, not a job a task.
        self.runner.with_archive_ids([e for index, listing in marked for e in listing.entries
                                      if self.runner.archive_path(tasks[index]) is not None])
        created = self.store.create(tasks)
        try:
            for index, listing in marked:
                self.runner.mark(created[index], listing.entries, named=True)
        except AppError:  # unmarked, their first runs would queue every entry
            for task in created:
                self.store.delete(task["id"])
            raise
        public = [self._announce("create", t) for t in created]
        for index in late:  # marked now, not at a timer's slot hours away: what comes out
            self.scheduler.run_soon(created[index], "create")  # meanwhile is new
        return public if many else public[0]

    def _listings(self, tasks: list[dict[str, Any]], marks: list[bool],
                  unnamed: set[int]) -> tuple[dict[int, Listing], set[int]]:
        """The listing of each task to be marked (refused when one fails) and of each task
        to be named whose handler answers quickly (a feed: never a slow yt-dlp listing; when
        it fails, ``task-{position}`` names the task and its runs will say what is wrong);
        ``tasks_concurrency`` at once, within LISTINGS_TIMEOUT for all. With them, the tasks
        to be marked whose listing that bound cut short or left unread."""
        until = time.monotonic() + LISTINGS_TIMEOUT
        late: set[int] = set()

        def read(index: int) -> Listing | None:
            task, mark = tasks[index], marks[index]
            left = until - time.monotonic()
            try:
                handler = self.handlers.choose(task["url"])
                if left > 0 and (mark or not isinstance(handler, GenericTaskHandler)):
                    return handler.list(task["url"], task["preset"], timeout=min(
                        left, FETCH_TIMEOUT if mark else NAME_TIMEOUT))
            except HandlerError as exc:  # a definition's match_url too
                if mark and time.monotonic() < until:
                    raise invalid(f"Could not list the task's entries: {exc}") from None
            except AppError:
                if mark and time.monotonic() < until:
                    raise
            finally:
                self.store.release_thread()
            if mark:
                late.add(index)
            return None

        wanted = [i for i in range(len(tasks)) if marks[i] or i in unnamed]
        if not wanted:
            return {}, late
        with ThreadPoolExecutor(min(len(wanted), self._settings.current.tasks_concurrency),
                                thread_name_prefix="task-listing") as pool:
            read_ = dict(zip(wanted, pool.map(read, wanted), strict=True))
        return {index: listing for index, listing in read_.items() if listing is not None}, late

    def update(self, task_id: int, body: Any, *, partial: bool) -> dict[str, Any]:
        self._task(task_id)
        if isinstance(body, dict) and "mark" in body:
            raise invalid("mark applies when a task is created; to mark the entries of this "
                          f"task, POST /api/tasks/{task_id}/mark.")
        clean = self.validate(body, partial=partial)
        self._check_values([clean])
        task = self.store.update(task_id, clean)
        if task is None:
            raise not_found("Task not found.")
        return self._announce("update", task)

    def delete(self, task_id: int) -> dict[str, Any]:
        task = self.runner.delete(task_id, lambda: self.store.delete(task_id))
        if task is None:
            raise not_found("Task not found.")
        return self._announce("delete", task)

    # --- runs -------------------------------------------------------------------------

    def execute(self, task_id: int) -> dict[str, Any]:
        """Start a run now, in the background; the execution as it starts. 409 if running."""
        task = self._task(task_id)
        if self.runner.running(task_id):
            raise AppError("The task is running; try again when it has finished.", CONFLICT)
        started = threading.Event()
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                self.runner.execute(task, "manual", on_start=lambda e: (
                    result.update(e), started.set()))
            except AppError as exc:
                result["error"] = exc
            except Exception:
                log.exception("task %s: manual run failed", task_id)
            finally:
                started.set()
                self.store.release_thread()

        threading.Thread(target=run, name=f"task-run-{task_id}", daemon=True).start()
        started.wait(FETCH_TIMEOUT)
        if isinstance(result.get("error"), AppError):
            raise result["error"]
        return result

    def _entries(self, task: dict[str, Any]) -> list[Entry]:
        try:
            return self.runner.listing(task).entries
        except HandlerError as exc:
            raise invalid(f"Could not list the task's entries: {exc}") from None

    def mark(self, task_id: int) -> dict[str, Any]:
        task = self._task(task_id)
        with self.runner.claim(task_id):
            entries = self._entries(task)
            if self.runner.gone(task_id):  # marks of no task: a new one given its id had them
                raise not_found("Task not found: it was deleted while its entries were "
                                "listed; nothing was marked.")
            count = self.runner.mark(task, entries)
        return {"message": f"Marked {count} entr{'y' if count == 1 else 'ies'} of task "
                           f"'{task['name']}' as downloaded."}

    def unmark(self, task_id: int) -> dict[str, Any]:
        task = self._task(task_id)
        with self.runner.claim(task_id):
            try:
                entries = self.runner.listing(task).entries
            except HandlerError as exc:
                # The marks still go; the archive keeps what it has, and the answer says
                # so (it said "Removed 4 entries from the archive": two marks each, none
                # removed from it).
                self.runner.unmark(task, [])
                return {"message": f"Forgot the marks of task '{task['name']}', but its "
                                   f"entries could not be listed ({exc}): the archive was "
                                   "left as it is."}
            count = self.runner.unmark(task, entries)
        return {"message": f"Removed {count} entr{'y' if count == 1 else 'ies'} of task "
                           f"'{task['name']}' from the archive."}

    def metadata(self, task_id: int) -> dict[str, Any]:
        """Write the channel's tvshow.nfo, info.json and pictures into the task's folder."""
        task = self._task(task_id)
        settings = self._settings.current
        folder = resolve_folder(settings.download_path, task["folder"])
        info = self.engine.extract_url(task["url"], task["preset"] or "default", [])
        # The site names the pictures: fetched as /api/thumbnail fetches, SSRF-safe (no
        # address of this machine or its network unless the setting allows, images only).
        allow = policy(settings.fetch_private_addresses)
        try:
            return write_metadata(settings.download_path, folder, info,
                                  lambda url: fetch_image(url, allow).data)
        except OSError as exc:
            raise invalid(f"Could not write the metadata files: {exc.strerror}.") from None

    def inspect(self, body: Any) -> dict[str, Any]:
        """What the URL's handler would queue (``static_only``: only which handler)."""
        if not isinstance(body, dict):
            raise invalid("The body must be a JSON object with a url.")
        url = check_url(body.get("url"))
        preset = body.get("preset") or ""
        if not isinstance(preset, str):
            raise invalid("preset must be a string.")
        if preset:
            self.engine.presets.check(preset, INVALID_REQUEST)
        name = body.get("handler")
        if name is not None and not isinstance(name, str):
            raise invalid("handler must be a string.")
        try:
            handler = self.handlers.by_name(name) if name else self.handlers.choose(url)
            usable = handler is not None and (not name or handler.can_handle(url))
        except HandlerError as exc:  # a task definition's match_url ran out of time
            raise _refusal(f"Inspection failed: {exc}", matched=False, handler=None,
                           metadata={"supported": False}) from None
        if not usable:
            message = (f"Handler '{name}' cannot process the supplied URL." if name
                       else "No handler matched the supplied URL.")
            raise _refusal(message, matched=False, handler=None,
                           metadata={"supported": handler is not None})
        static_only = body.get("static_only")
        if static_only is not None and flag("static_only")(static_only):
            return {"items": [], "metadata": {"matched": True, "handler": handler.name}}
        try:
            listing = handler.list(url, preset)
        except HandlerError as exc:
            message = f"Inspection failed: {exc}"
            raise _refusal(message, matched=True, handler=handler.name,
                           metadata={"supported": True}) from None
        return {
            "matched": True, "handler": handler.name, "supported": True,
            "items": [e.public(handler.name, listing.title or url) for e in listing.entries],
            "metadata": {"raw_count": len(listing.entries), "title": listing.title},
        }
