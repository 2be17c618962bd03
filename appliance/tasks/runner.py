"""One run of a task (an execution): list the entries, queue the new ones, record the outcome.

What a task has seen, so that no entry is queued twice, is read from what lasts on disk, not
kept in memory: the download archive that applies to the task (its preset's, or the default
one), the entries marked for it, and the items it queued before (its batch,
``task-<id>-<created>``, written to the database in one transaction when queued). A run
killed at any point is done again at start-up and finds what the killed one queued.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from .. import events, in_use
from ..engine.archive import archive_id
from ..engine.engine import DownloadEngine
from ..engine.options import resolve_folder
from ..engine.requests import check_url
from ..errors import CONFLICT, AppError, not_found
from ..events import EventBus
from ..logs import LogSubscription
from ..store import ItemStore
from ..store.records import ERROR, FINISHED, Item
from ..store.tasks import FAILED, RUNNING, SUCCESS, TaskStore
from .handlers import Entry, Handler, HandlerError, Handlers, Listing
from .retention import expired

log = logging.getLogger(__name__)

# An entry whose downloads failed this often is not queued again by its task.
MAX_ATTEMPTS = 3
MAX_ARCHIVE_IDS = 500  # URLs per archive-id job (the engine's bound)
# Refused entries a run tells one by one: a feed of 5,000 "javascript:" links wrote 1.3 MB
# to the service's log at each run, and at a timer of 5 minutes its 30 MB (every other
# line of the service) were gone within two hours.
REFUSALS_TOLD = 20


def batch_id(task: dict[str, Any]) -> str:
    """The batch of the task's items. SQLite may give a deleted task's id to a new one: the
    creation time keeps their items apart."""
    return f"task-{task['id']}-{int(task['created_at'])}"


class ExecutionLog:
    """The lines of one running execution, fanned out to live readers as they come."""

    def __init__(self, execution_id: int) -> None:
        self.execution_id = execution_id
        self.entries: list[tuple[str, float]] = []  # (line, time written)
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._subscribers: tuple[LogSubscription, ...] = ()

    def write(self, level: str, message: str) -> None:
        now = time.time()
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S")
        line = f"{stamp} {level.upper()} {message}"
        with self._lock:
            self.entries.append((line, now))
            subscribers = self._subscribers
        for subscriber in subscribers:
            subscriber.put(line, now)
        log.log(logging.WARNING if level == "error" else logging.INFO, "execution %s: %s",
                self.execution_id, message, extra={"announce": False})

    @property
    def lines(self) -> list[str]:
        with self._lock:
            return [line for line, _ in self.entries]

    def subscribe(self, maxsize: int = 1000
                  ) -> tuple[LogSubscription, list[tuple[str, float]]]:
        """A live subscription and the lines written before it (none lost between)."""
        subscription = LogSubscription(maxsize)
        with self._lock:
            self._subscribers = (*self._subscribers, subscription)
            return subscription, list(self.entries)

    def unsubscribe(self, subscription: LogSubscription) -> None:
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not subscription)


@dataclasses.dataclass
class Seen:
    """The keys a task has seen: its marks and earlier items, and its archive's lines (the
    archive's cached set as it is, not copied: it may hold tens of thousands)."""

    keys: set[str]
    archive: frozenset[str]

    def knows(self, entry: Entry) -> bool:
        keys = entry.keys()
        return not (keys.isdisjoint(self.keys) and keys.isdisjoint(self.archive))


@dataclasses.dataclass
class Outcome:
    handler: str = ""
    found: int = 0
    queued: int = 0
    skipped: int = 0
    failed: int = 0
    error: str = ""
    # Entries refused (a URL no item may have): the run still succeeds with the rest.
    warning: str = ""
    # What retention could not do (files past the task's rule left on the disk): said in the
    # execution's and the task's error too, not only in the log (the run still succeeds).
    retention: str = ""
    title: str = ""


class TaskRunner:
    def __init__(self, store: TaskStore, items: ItemStore, engine: DownloadEngine,
                 handlers: Handlers, bus: EventBus,
                 on_task_change: Callable[[str, dict[str, Any]], None],
                 follow_clock: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.items = items
        self.engine = engine
        self.handlers = handlers
        self.bus = bus
        self._on_task_change = on_task_change
        self._follow_clock = follow_clock
        self._lock = threading.Lock()
        self._running: dict[int, ExecutionLog | None] = {}
        # Tasks deleted while they ran: their runs queue nothing more.
        self._deleted: set[int] = set()
        # Set when the service stops: a run that fails from then on was cut short, not
        # failed.
        self.stopping = threading.Event()

    # --- who runs -----------------------------------------------------------------------

    def running(self, task_id: int) -> bool:
        with self._lock:
            return task_id in self._running

    def live_log(self, execution_id: int) -> ExecutionLog | None:
        with self._lock:
            return next((x for x in self._running.values()
                         if x is not None and x.execution_id == execution_id), None)

    @contextlib.contextmanager
    def claim(self, task_id: int) -> Iterator[None]:
        """The task for this thread alone (a run, a mark); 409 when it is busy, 404 when it
        was deleted since it was read (under the lock ``delete`` holds: else a run that began
        as the task went queued its feed for no task)."""
        with self._lock:
            if task_id in self._running:
                raise AppError("The task is running; try again when it has finished.",
                               CONFLICT)
            if self.store.get(task_id) is None:
                raise not_found("Task not found: it was deleted.")
            self._running[task_id] = None
        try:
            yield
        finally:
            with self._lock:
                self._running.pop(task_id, None)
                self._deleted.discard(task_id)

    def delete(self, task_id: int, delete: Callable[[], dict[str, Any] | None]
               ) -> dict[str, Any] | None:
        """What ``delete`` (the store's delete of the task) returns, no run or mark of it
        beginning meanwhile; one in flight queues nothing from now on (a listing takes
        seconds; a person who deleted a subscription got its downloads)."""
        with self._lock:
            if task_id in self._running:
                self._deleted.add(task_id)
            return delete()

    def gone(self, task_id: int) -> bool:
        """Whether the task was deleted while this thread held it."""
        with self._lock:
            return task_id in self._deleted

    def _check_not_deleted(self, task_id: int) -> None:
        if self.gone(task_id):
            raise HandlerError("the task was deleted while it ran: nothing was queued.")

    # --- entries ------------------------------------------------------------------------

    def listing(self, task: dict[str, Any]) -> Listing:
        """The entries behind the task's URL, from the first handler that takes it."""
        return self._list(self.handlers.choose(task["url"]), task)

    @staticmethod
    def _list(handler: Handler, task: dict[str, Any]) -> Listing:
        return handler.list(task["url"], task.get("preset") or "")

    def archive_path(self, task: dict[str, Any]) -> Path | None:
        preset = self.engine.presets.resolve(task.get("preset") or "default")
        return self.engine.planner.archive_path(preset)

    def with_archive_ids(self, entries: list[Entry]) -> list[Entry]:
        """Fill in the archive ids the handler did not know, as yt-dlp would name them (in a
        warm download process, without the network)."""
        unknown = [e for e in entries if not e.archive_id]
        for start in range(0, len(unknown), MAX_ARCHIVE_IDS):
            chunk = unknown[start:start + MAX_ARCHIVE_IDS]
            found = self.engine.archiving.archive_ids([e.url for e in chunk])
            for entry, answer in zip(chunk, found, strict=False):
                entry.archive_id = answer.get("archive_id") or ""
        return entries

    def seen(self, task: dict[str, Any], archive: Path | None) -> Seen:
        """What the task must not queue again (``archive``: the one that applies to it)."""
        keys = set(self.store.marked(task["id"]))
        failures: Counter[str] = Counter()
        for item in self.items.batch(batch_id(task)):
            item_keys = _item_keys(item)
            if item.status == ERROR:
                failures.update(item_keys)
                continue
            keys.update(item_keys)
        keys.update(k for k, n in failures.items() if n >= MAX_ATTEMPTS)
        return Seen(keys, self.engine.archives.members(archive) if archive else frozenset())

    def mark(self, task: dict[str, Any], entries: list[Entry], *, named: bool = False) -> int:
        """Record entries as done: in the task's marks, and in its archive when one applies
        (``named``: their archive ids were looked up already). How many entries were not
        marked before (an entry is marked by its URL and its archive id: counting those said
        twice the number of a channel's entries)."""
        archive = self.archive_path(task)
        if archive is not None:
            if not named:
                self.with_archive_ids(entries)
            self.engine.archives.add(archive, [e.archive_id for e in entries if e.archive_id])
        before = self.store.marked(task["id"])
        self.store.mark(task["id"], [k for e in entries for k in sorted(e.keys())])
        return _count_entries(entries, lambda keys: keys.isdisjoint(before))

    def unmark(self, task: dict[str, Any], entries: list[Entry]) -> int:
        """Forget the task's marks, and take ``entries`` out of its archive; how many of them
        were marked or archived."""
        archive = self.archive_path(task)
        removed: set[str] = set()
        if archive is not None and entries:
            self.with_archive_ids(entries)
            removed = set(self.engine.archives.remove(
                archive, [e.archive_id for e in entries if e.archive_id]))
        known = self.store.marked(task["id"]) | removed
        self.store.unmark(task["id"])
        return _count_entries(entries, lambda keys: not keys.isdisjoint(known))

    # --- a run --------------------------------------------------------------------------

    def execute(self, task: dict[str, Any], trigger: str,
                on_start: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Run ``task`` now in this thread; the finished execution. 409 when it runs.
        ``on_start`` gets the execution once it is recorded."""
        with self.claim(task["id"]):
            execution = self.store.start_execution(task, trigger)
            journal = ExecutionLog(execution["id"])
            with self._lock:
                self._running[task["id"]] = journal
            if on_start is not None:
                on_start(execution)
            self._on_task_change("start", task)
            try:
                outcome = self._run(task, journal)
            finally:
                journal.done.set()
        return self._record(task, execution, journal, outcome)

    def _run(self, task: dict[str, Any], journal: ExecutionLog) -> Outcome:
        outcome = Outcome()
        journal.write("info", f"task '{task['name']}': {task['url']}")
        self._step(task, outcome, lambda: self._list_and_queue(task, journal, outcome))
        # Whatever the listing did: a channel gone for good (its feed a 404 at every run) or
        # a task whose handler is off kept every file past the task's rule.
        if not self.gone(task["id"]) and not self.stopping.is_set():
            self._step(task, outcome, lambda: self._apply_retention(task, journal, outcome))
        if outcome.error:
            outcome.failed = max(1, outcome.found - outcome.skipped - outcome.queued)
            journal.write("error", outcome.error)
        elif outcome.warning:
            journal.write("warning", outcome.warning)
        return outcome

    @staticmethod
    def _step(task: dict[str, Any], outcome: Outcome, step: Callable[[], None]) -> None:
        """``step``, its failure the run's error (the first one said)."""
        try:
            step()
        except (HandlerError, AppError) as exc:
            outcome.error = outcome.error or (
                exc.message if isinstance(exc, AppError) else str(exc))
        except Exception as exc:  # a bug must not stop the scheduler or the other tasks
            log.exception("task %s failed", task["id"])
            outcome.error = outcome.error or f"internal error: {type(exc).__name__}"

    def _list_and_queue(self, task: dict[str, Any], journal: ExecutionLog,
                        outcome: Outcome) -> None:
        if task["mark_pending"]:
            self._make_mark(task, journal, outcome)
            return
        if not task["handler_enabled"]:
            outcome.handler = "none"
            journal.write("info", "handler off: the URL is queued as one item")
            outcome.found = outcome.queued = len(self._queue(task, [Entry(task["url"])]))
            return
        entries = self._read(task, journal, outcome)
        fresh, refused = self._new(task, entries, journal)
        outcome.failed = len(refused)
        outcome.warning = _refusals(refused)
        outcome.skipped = outcome.found - len(fresh) - outcome.failed
        outcome.queued = len(self._queue(task, fresh))
        journal.write("info", f"queued {outcome.queued}, skipped {outcome.skipped}"
                      + (f", refused {outcome.failed}" if refused else ""))

    def _read(self, task: dict[str, Any], journal: ExecutionLog, outcome: Outcome
              ) -> list[Entry]:
        """The entries the task's handler lists now, said in the outcome and the journal."""
        handler = self.handlers.choose(task["url"])
        outcome.handler = handler.name
        listing = self._list(handler, task)
        outcome.title = listing.title
        outcome.found = len(listing.entries)
        journal.write("info", f"{outcome.handler} found {outcome.found} entries")
        return listing.entries

    def _make_mark(self, task: dict[str, Any], journal: ExecutionLog,
                   outcome: Outcome) -> None:
        """The mark a task was created with, which its creation could not make in time:
        every entry seen now is marked, none queued (its handler on or off)."""
        try:
            entries = self._read(task, journal, outcome)
        except HandlerError as exc:
            raise HandlerError(f"the entries to mark could not be listed, so nothing was "
                               f"queued (the next run tries again): {exc}") from None
        outcome.skipped = outcome.found
        count = self.mark(task, entries)
        journal.write("info", f"marked {count} as done (the task was created with mark): "
                      "only entries that appear from now on are queued")

    def _new(self, task: dict[str, Any], entries: list[Entry], journal: ExecutionLog
             ) -> tuple[list[Entry], list[tuple[Entry, str]]]:
        """The entries to queue, and those refused with why (after the date filter: what
        the task does not want is skipped, not refused)."""
        after = task.get("published_after") or ""
        if after:
            limit = datetime.combine(date.fromisoformat(after), datetime.min.time(),
                                     UTC).timestamp()
            kept = [e for e in entries if e.published is None or e.published >= limit]
            if len(kept) != len(entries):
                journal.write("info", f"{len(entries) - len(kept)} published before {after}")
            entries = kept
        entries, refused = _checked(entries, journal)
        archive = self.archive_path(task)
        seen = self.seen(task, archive)
        # What the task has seen by URL needs no archive id: only the rest is named by yt-dlp
        # (a job in a warm process), so a feed of 50 with one new entry costs one name, not 50.
        unseen = [e for e in entries if not seen.knows(e)]
        if unseen and archive is not None:
            self.with_archive_ids(unseen)
        fresh, keys = [], set()
        for entry in unseen:
            if seen.knows(entry) or entry.keys() & keys:
                continue
            keys.update(entry.keys())
            fresh.append(entry)
        return fresh, refused

    def _queue(self, task: dict[str, Any], entries: list[Entry]) -> list[Item]:
        if not entries:
            return []
        self._check_not_deleted(task["id"])
        base = {
            "preset": task.get("preset") or None, "folder": task.get("folder") or "",
            "template": task.get("template") or "", "cli": task.get("cli") or "",
            "cookies": task.get("cookies") or "", "auto_start": task["auto_start"],
            "batch_id": batch_id(task), "batch_name": task["name"],
        }
        return self.engine.add([
            {**base, "url": e.url,
             "extras": {"task": task["name"], "task_id": task["id"],
                        **({"task_entry": e.archive_id} if e.archive_id else {})}}
            for e in entries
        ])

    def _apply_retention(self, task: dict[str, Any], journal: ExecutionLog,
                         outcome: Outcome) -> None:
        if not (task.get("keep_newest") or task.get("keep_days")):
            return

        def said(level: str, text: str) -> None:
            journal.write(level, text)
            outcome.retention = text

        if not self.engine.settings.remove_files:
            # Told in the log alone, the run and the task said success with no error while
            # the disk filled.
            said("error", "retention is set but YTP_REMOVE_FILES is off: no file was deleted")
            return
        if (problem := self.engine.folder_disk.held) is not None:
            # Its files are not to be seen: their items went and the files stayed on the
            # disk for good, out of any retention's reach, once it was back.
            said("warning", f"retention waits for the download folder: {problem}")
            return
        self._follow_clock()  # a step since the loop's last look: dated again before ages
        finished = [i for i in self.items.batch(batch_id(task))
                    if i.status == FINISHED and i.filename]
        # The rule is the task's folder's: a file moved out of it (the browser's move, which
        # the item follows, into a folder of the person's own to keep it) is no longer the
        # task's to delete, nor one of the newest N it keeps.
        inside = [i for i in finished if _in_its_folder(i)]
        if len(inside) < len(finished):
            journal.write("info", f"retention left {len(finished) - len(inside)} file(s) moved "
                                  "out of the task's folder alone")
        old = expired(inside, task.get("keep_newest") or 0, task.get("keep_days") or 0,
                      time.time())
        if not old:
            return
        # Marked first: the entries stay done for the task once their items are gone.
        self.store.mark(task["id"], [k for i in old for k in sorted(_item_keys(i))])
        # A file a person is playing or being sent (or was a moment ago) stays, with its
        # item, until a run finds it unused: the episode went from under the person
        # watching it.
        busy = {i.id for i in old if _in_use(i)}
        if busy:
            old = [i for i in old if i.id not in busy]
            journal.write("info", f"retention kept {len(busy)} file(s) being played or sent "
                                  "for now: a later run removes them")
        # A file another item records too (a download by hand that yt-dlp found on disk
        # for this entry) is not the task's to delete: the item goes, the file stays.
        shared = self.items.sharing_a_file(old)
        own = [i for i in old if i.id not in shared]
        # What is said is what the disk shows: the engine leaves a file that is no longer
        # the download's (renamed, replaced, edited since) and finds none that was moved
        # away; "removed 2" for two such files was untrue.
        there = {i.id for i in own if _on_disk(i)}
        self.engine.delete_items([i.id for i in own], remove_file=True)
        if shared:
            self.engine.delete_items(sorted(shared))
            journal.write("info", f"retention kept the file(s) of {len(shared)} item(s): "
                                  "another download has the same file")
        removed = sum(1 for i in own if i.id in there and not _on_disk(i))
        if len(own) > len(there):
            journal.write("info", f"retention found {len(own) - len(there)} file(s) no longer "
                                  "there (moved, renamed or deleted since); their items went")
        if len(there) > removed:
            said("warning", f"retention left {len(there) - removed} file(s) as they are: not "
                            "the file the download wrote (replaced or edited since), or no "
                            "longer in a download folder; the service's log names each")
        journal.write("info", f"retention removed {removed} file(s)")

    def _record(self, task: dict[str, Any], execution: dict[str, Any], journal: ExecutionLog,
                outcome: Outcome) -> dict[str, Any]:
        status = FAILED if outcome.error else SUCCESS
        # A success with refused entries, or files retention left, says why in ``error``;
        # it is no failure streak.
        said = "; ".join(text for text in (outcome.error or outcome.warning, outcome.retention)
                         if text)
        counts = {"found": outcome.found, "queued": outcome.queued,
                  "skipped": outcome.skipped, "failed": outcome.failed}
        if outcome.error and self.stopping.is_set():
            # Left "running" with its log: the next start marks it interrupted and runs the
            # task again, as after a crash.
            self.store.finish_execution(execution["id"], journal.lines, status=RUNNING,
                                        error=outcome.error, handler=outcome.handler, **counts)
            return {**execution, **counts}
        failures = (task.get("failures") or 0) + 1 if outcome.error else 0
        updated = self.store.finish_run(
            task["id"], execution["id"], journal.lines,
            {"status": status, "error": said, "handler": outcome.handler, **counts},
            {"last_run_at": time.time(), "last_status": status, "last_error": said,
             "last_found": outcome.found, "last_queued": outcome.queued, "failures": failures})
        if updated is not None:
            self._on_task_change("update", updated)
        if outcome.queued:
            self.bus.publish(events.TASK_DISPATCHED, {
                "task_id": task["id"], "name": task["name"], "url": task["url"],
                "execution_id": execution["id"], "handler": outcome.handler, **counts})
        if outcome.error and failures == 1 and updated is not None:  # once per streak
            self.bus.message("error", f"Task {task['name']} failed", outcome.error,
                             task_id=task["id"])
        return {**execution, **counts, "status": status, "error": said,
                "handler": outcome.handler, "finished_at": time.time()}


def _checked(entries: list[Entry], journal: ExecutionLog
             ) -> tuple[list[Entry], list[tuple[Entry, str]]]:
    """The entries whose URL an item may have (the engine's own check, so that one bad entry
    cannot make the engine refuse the whole batch), and the others with the reason, each
    told in the journal. A kept entry's URL is the one the item will have (stripped)."""
    kept, refused = [], []
    for entry in entries:
        try:
            entry.url = check_url(entry.url)
        except AppError as exc:
            refused.append((entry, exc.message))
            if len(refused) <= REFUSALS_TOLD:
                journal.write("warning", f"entry refused, not queued: {exc.message} "
                                         f"(entry {entry.url[:200]!r})")
            continue
        kept.append(entry)
    if len(refused) > REFUSALS_TOLD:
        journal.write("warning", f"{len(refused) - REFUSALS_TOLD} more entries refused, not "
                                 "queued (not each told)")
    return kept, refused


def _refusals(refused: list[tuple[Entry, str]]) -> str:
    if not refused:
        return ""
    count = len(refused)
    return (f"{count} entr{'y' if count == 1 else 'ies'} refused, not queued: "
            f"{refused[0][1]}" + (" (and others; see the log)" if count > 1 else ""))


def _count_entries(entries: list[Entry], counts: Callable[[set[str]], bool]) -> int:
    """How many distinct entries ``counts`` takes (one listed twice, or under another link
    with the same archive id, is one)."""
    count, seen = 0, set[str]()
    for entry in entries:
        keys = entry.keys()
        if keys.isdisjoint(seen) and counts(keys):
            count += 1
        seen |= keys
    return count


def _on_disk(item: Item) -> bool:
    """Whether the file ``item`` recorded is there (a folder it names, never the cwd)."""
    folder = Path(item.download_folder)
    return folder.is_absolute() and (folder / item.filename).is_file()


def _in_use(item: Item) -> bool:
    folder = Path(item.download_folder)
    return folder.is_absolute() and in_use.FILES.in_use(folder / item.filename)


def _in_its_folder(item: Item) -> bool:
    """Whether the file ``item`` recorded is still in the folder it was downloaded into (or
    below it: a template's subfolders), by its path's text, as the history names it; and,
    once the file browser moved it, in the folder its download put it in (the task's folder
    may be the download folder itself, which every folder of the person's own is below)."""
    placed = str(item.extras.get("downloaded_as") or "")
    if placed and Path(item.filename).parent != Path(placed).parent:
        return False
    root = Path(item.download_folder)
    try:
        folder = resolve_folder(root, item.folder)
    except AppError:  # a folder no longer allowed: not one retention may delete in
        return False
    return Path(os.path.normpath(root / item.filename)).is_relative_to(folder)


def _item_keys(item: Item) -> set[str]:
    keys = {item.url, str(item.extras.get("task_entry") or ""),
            str(item.extras.get("archive_id") or ""),
            archive_id(item.extractor, item.video_id, item.url) or ""}
    return {k for k in keys if k}
