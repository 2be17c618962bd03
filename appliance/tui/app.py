"""The Textual application: connection, the live feed, the views and the item actions."""

from __future__ import annotations

import asyncio
import collections
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.filter import LineFilter
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Footer, Static

from appliance.client import ApiClient, ApiError, LiveEvent, Unreachable
from appliance.client.live import CONNECTED, DISCONNECTED, REFUSED, FeedState, LiveFeed
from appliance.client.shown import shown_lines

from .catch_up import CaughtUp, catch_up
from .controls import ShownControls
from .crash import write_crash_log
from .format import cut, json_text, name_of, named, number
from .model import ENDED, MAX_ITEMS, Missed, QueueModel
from .screens.add import AddScreen, add_each
from .screens.confirm import DeleteScreen
from .screens.details import DetailsScreen
from .screens.problem import ProblemScreen
from .threads import THREAD_NAME, DaemonExecutor
from .views.files import FilesView
from .views.history import HistoryView
from .views.logs import LogsView
from .views.queue import QueueView
from .views.settings import SettingsView
from .views.subscriptions import SubscriptionsView

REPAINT_SECONDS = 0.5  # progress repaints at most twice a second, only the rows that changed
SPEED_SAMPLE_SECONDS = 1.0
DISK_REFRESH_SECONDS = 30.0
ITEM_NAMES = ("title", "url", "id")  # what an item is called, the first that shows
FAILED_PAGE = 500  # "failed today" counts up to this many
CATCH_UP_ITEMS = 50  # after a reconnect, the newest items that ended meanwhile shown in the queue
View = TypeVar("View", bound=Widget)
VIEWS = {"queue": "Queue", "history": "History", "logs": "Logs", "settings": "Settings",
         "subscriptions": "Subs", "files": "Files"}
WIDE_NAV = 100  # columns from which the nav line also names the palette and quit keys
# The service's errors and warnings as toasts: at most this many in a window, then one that
# counts the rest (a burst of thousands froze the TUI for half a minute; the Logs view has
# them all).
TOASTS_PER_WINDOW = 3
TOAST_WINDOW = 5.0


class MainScreen(Screen):
    def compose(self) -> ComposeResult:
        yield Static(id="banner")
        yield Static(id="nav")
        with ContentSwitcher(initial="queue", id="views"):
            yield QueueView(self.app.model, id="queue")
            yield HistoryView(id="history")
            yield LogsView(id="logs")
            yield SettingsView(id="settings")
            yield SubscriptionsView(id="subscriptions")
            yield FilesView(id="files")
        yield Footer(show_command_palette=False, compact=True)

    def on_mount(self) -> None:
        self.query_one("#banner").display = False
        self.query_one("#queue-table").focus()
        self.show_nav("queue")
        self.app.main_ready()

    def show_nav(self, current: str) -> None:
        """One line naming the views and their keys, the current one marked."""
        nav = Text()
        for key, (name, title) in enumerate(VIEWS.items(), start=1):
            nav.append(f" {key} {title} ", style="reverse bold" if name == current else "")
        nav.append("  a Add  ? Help" + ("  ^p Commands  q Quit" if self.size.width >= WIDE_NAV
                                         else ""), style="dim")
        self.query_one("#nav", Static).update(nav)


def folder_problem(health: dict[str, Any]) -> str | None:
    """Why downloads wait for the download folder's disk (``GET /api/health``), if they do."""
    said = health.get("download_folder")
    return str(said) if said and said != "ok" else None


class ApplianceApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "appliance"
    BINDINGS = [
        # The nav line shows these; the footer keeps its room for the view's own keys.
        Binding("1", "view('queue')", "Queue", show=False),
        Binding("2", "view('history')", "History", show=False),
        Binding("3", "view('logs')", "Logs", show=False),
        Binding("4", "view('settings')", "Settings", show=False),
        Binding("5", "view('subscriptions')", "Subscriptions", show=False),
        Binding("6", "view('files')", "Files", show=False),
        Binding("question_mark", "toggle_help", "Help", show=False),
        Binding("q", "quit", "Quit", show=False),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, client: ApiClient) -> None:
        super().__init__()
        self.client = client
        self.model = QueueModel()
        self.configuration: dict[str, Any] = {}
        self.connection_state = ""
        self._feed_started = False
        self._ws_url: str | None = None  # where the feed connects
        self._disk_checked = 0.0
        self.disk_free: int | None = None
        self.folder_problem: str | None = None
        self.crash_report = ""
        self._shown_controls = ShownControls()
        self._toasted: collections.deque[float] = collections.deque(maxlen=TOASTS_PER_WINDOW)
        self._muted = 0
        self.adding: set[threading.Thread] = set()  # URLs being queued (add_urls)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Textual's, except that a message is text, not markup: most come from the service
        (a site's title in an error), where ``[/b]`` stopped the TUI (the toast could not be
        drawn) and ``[@click=app.quit]`` made a link that runs one of its actions."""
        super().notify(cut(message), title=cut(title), severity=severity, timeout=timeout,
                       markup=markup)

    def get_line_filters(self) -> Sequence[LineFilter]:
        # Every line any widget draws passes here: see appliance.tui.controls.
        return [*super().get_line_filters(), self._shown_controls]

    def compose(self) -> ComposeResult:
        yield Static(f"Connecting to {self.client.url} …", id="connecting", markup=False)

    def on_mount(self) -> None:
        # Before the first worker: none of them may hold the TUI open once the person quits.
        asyncio.get_running_loop().set_default_executor(DaemonExecutor())
        self.connect()

    # --- connecting ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="connect")
    def connect(self) -> None:
        try:
            configuration = self.client.configuration()
            health = self.client.health()
            failed_today = self.failed_today()
        except Unreachable as exc:
            self.call_from_thread(self.show_problem, "unreachable", exc.reason)
        except ApiError as exc:
            self.call_from_thread(self.show_problem,
                                  "refused" if exc.unauthorized else "error", exc.message)
        else:
            self.call_from_thread(self.connected, configuration, health, failed_today)

    def failed_today(self) -> int:
        """Failures since local midnight: the newest errors, one page (once, at connect)."""
        midnight = time.mktime((*time.localtime()[:3], 0, 0, 0, 0, 0, -1))
        page = self.client.history(per_page=FAILED_PAGE, status="error")
        return sum(1 for i in page.items if (number(i.get("finished_at")) or 0) >= midnight)

    def failed(self, exc: ApiError | Unreachable) -> None:
        """A request that failed, said. A refusal of the credentials (a token made anew or a
        password changed while the TUI ran: every request refused, the live feed still
        open) is the problem's screen, which says what to do; it was a toast of the
        service's words ("Invalid credentials.") at each key, the person left to guess."""
        if isinstance(exc, ApiError) and exc.unauthorized:
            self.show_problem("refused", exc.message)
        else:
            self.notify(str(exc), severity="error")

    def show_problem(self, kind: str, reason: str) -> None:
        if isinstance(self.screen, ProblemScreen):
            return
        # (by its start and end: 2,000 characters pushed the advice off an 80x24 terminal)
        self.push_screen(ProblemScreen(kind, self.client.url, named(reason)),
                         self._problem_closed)

    def _problem_closed(self, retry: bool | None) -> None:
        if not retry:
            return
        if self._feed_started:  # the websocket refused us, or led elsewhere, after a start
            self.follow_websocket(again=True)
        else:
            self.connect()

    def connected(self, configuration: dict[str, Any], health: dict[str, Any],
                  failed_today: int) -> None:
        self.configuration_read(configuration)
        self.model.failed = failed_today
        self.disk_free = health.get("download_path_free_bytes")
        self.folder_problem = folder_problem(health)
        self.push_screen(MainScreen())

    def main_ready(self) -> None:
        self.queue_view.disk_free = self.disk_free
        self.queue_view.show_folder_problem(self.folder_problem)
        self.set_interval(REPAINT_SECONDS, self.repaint_queue)
        self.set_interval(SPEED_SAMPLE_SECONDS, self.queue_view.sample_speed)
        self.start_feed()

    def start_feed(self) -> None:
        self._feed_started = True
        try:
            ws_url = self.client.websocket_url(self.configuration)
        except ApiError as exc:  # a port or path that would lead elsewhere
            self.show_problem("error", exc.message)
            return
        self._ws_url = ws_url
        feed = LiveFeed(self.client, ws_url, on_event=self.on_live_event,
                        on_snapshot=self.on_snapshot, on_state=self.on_feed_state,
                        queue_limit=MAX_ITEMS)
        self.run_worker(feed.run(), group="feed", exclusive=True)

    def follow_websocket(self, again: bool = False) -> None:
        """The websocket's address read again from the service's configuration, and the feed
        started there when it moved (``again``: in any case). The feed retries the address
        it was given: a service restarted with another YTP_WS_PORT (or path) was never
        reached again, the TUI disconnected until it was restarted too."""
        self._read_configuration(self.model.pause_events, follow=True, again=again)

    def refresh_configuration(self) -> None:
        self._read_configuration(self.model.pause_events)

    @work(thread=True, exclusive=True, group="configuration")
    def _read_configuration(self, pauses: int, follow: bool = False,
                            again: bool = False) -> None:
        """``pauses`` is counted when the read is asked for, in the app's thread: this one
        may start after the next event."""
        try:
            configuration = self.client.configuration()
        except (ApiError, Unreachable):
            if again:  # the problem's screen again, with what is wrong now
                self.call_from_thread(self.start_feed)
            return
        if follow:
            self.call_from_thread(self._websocket_known, configuration, again, pauses)
        else:
            self.call_from_thread(self.configuration_read, configuration, pauses)

    def _websocket_known(self, configuration: dict[str, Any], again: bool,
                         pauses: int) -> None:
        self.configuration_read(configuration, pauses)
        try:
            moved = self.client.websocket_url(configuration) != self._ws_url
        except ApiError:
            moved = True  # start_feed says what is wrong with it
        if again or moved:
            self.start_feed()

    @property
    def queue_view(self) -> QueueView:
        return self.get_screen_main().query_one(QueueView)

    def get_screen_main(self) -> MainScreen:
        return next(s for s in self.screen_stack if isinstance(s, MainScreen))

    def view(self, kind: type[View]) -> View | None:
        """The view on the main screen; None before it is built and while the app closes
        (a timer or the feed may still call then)."""
        main = next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)
        found = main.query(kind) if main is not None else None
        return found.first() if found else None

    # --- the feed --------------------------------------------------------------------------

    def configuration_read(self, configuration: dict[str, Any],
                           pauses: int | None = None) -> None:
        """The service's configuration, with whether its queue is paused: a pause does not
        outlive a restart, and another client may pause or resume while the TUI is away. The
        header said PAUSED over running downloads, and ``P`` (which resumes what the header
        says is paused) answered "Downloads are not paused." each time, for good.
        ``pauses``: the count of pause and resume events when it was asked for; after one
        more, its ``paused`` is older than theirs (a pause right after a reconnect was undone
        by the reconnect's read, answered just before it: PAUSED gone over a paused queue)."""
        self.configuration = configuration
        if pauses is None or pauses == self.model.pause_events:
            self.model.paused = bool(configuration.get("paused"))
        if (queue := self.view(QueueView)) is not None:
            queue.repaint_totals()

    def on_snapshot(self, live: dict[str, Any]) -> None:
        again = self.model.synced
        missed = self.model.snapshot(live)
        if missed.vanished or missed.ended:
            self.fetch_final(missed)
        self.repaint_queue()
        # Connected again: what the other views missed meanwhile.
        subscriptions, files = self.view(SubscriptionsView), self.view(FilesView)
        if subscriptions is not None and subscriptions.loaded:
            subscriptions.load()
        if files is not None and files.current is not None:
            files.load()
        if (logs := self.view(LogsView)) is not None:
            logs.resume()
        self.refresh_disk(force=True)  # the disk may have gone or come back meanwhile
        if again:
            self.refresh_configuration()  # paused or resumed meanwhile, or restarted

    @work(thread=True, group="final")
    def fetch_final(self, missed: Missed) -> None:
        """Items that ended while the TUI was disconnected, their state from the history's
        pages: those it showed, and the newest the history gained meanwhile (an item added
        and ended while it was away came by no event)."""
        try:
            caught = catch_up(self.client, missed, CATCH_UP_ITEMS)
        except (ApiError, Unreachable):
            return
        self.call_from_thread(self._caught_up, caught)

    def _caught_up(self, caught: CaughtUp) -> None:
        for item in caught.ended:
            self.model.ended_meanwhile(item)
        for item_id in caught.gone:
            self.model.gone(item_id)

    def on_live_event(self, event: LiveEvent) -> None:
        self.model.apply(event)
        if event.name in {"log_error", "log_warning"} and isinstance(event.data, dict):
            text = event.message or str(event.data.get("message") or "")
            self.toast_event(text, event.title or str(event.data.get("title") or ""),
                             "error" if event.name == "log_error" else "warning")
        elif event.name == "item_completed":
            self.refresh_disk()
        elif event.name == "download_folder" and isinstance(event.data, dict):
            if (queue := self.view(QueueView)) is not None:
                queue.show_folder_problem(str(event.data.get("problem") or "") or None)
        elif event.name == "files_changed" and isinstance(event.data, dict):
            if (files := self.view(FilesView)) is not None:
                files.folders_changed(event.data.get("folders"))
        elif event.name == "config_update" and isinstance(event.data, dict):
            feature = event.data.get("feature")
            if feature == "tasks":
                if (subscriptions := self.view(SubscriptionsView)) is not None:
                    subscriptions.changed(str(event.data.get("action") or ""),
                                          event.data.get("data"))
            elif feature != "task_definitions":
                self.refresh_configuration()

    def toast_event(self, text: str, title: str, severity: SeverityLevel) -> None:
        """An error or warning the service announced, unless the window has had its toasts:
        then counted, and told when the window ends."""
        now = time.monotonic()
        if len(self._toasted) == TOASTS_PER_WINDOW and now - self._toasted[0] < TOAST_WINDOW:
            if not self._muted:
                self.set_timer(TOAST_WINDOW - (now - self._toasted[0]), self._tell_muted)
            self._muted += 1
            return
        self._toasted.append(now)
        self.notify(text, title=title, severity=severity)

    def _tell_muted(self) -> None:
        muted, self._muted = self._muted, 0
        self._toasted.append(time.monotonic())
        self.notify(f"{muted} more errors and warnings from the service: the Logs view (3) "
                    "has them all.", severity="warning")

    def on_feed_state(self, state: FeedState) -> None:
        self.connection_state = state.state
        if state.state == REFUSED:
            self.show_problem("refused", state.reason)
            return
        main = next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)
        if main is None or not (found := main.query("#banner")):
            return  # closing
        banner = found.first(Static)
        if state.state == DISCONNECTED:
            self.follow_websocket()
            # (by its start and end, as the problem's screen: the line grows with it)
            banner.update(Text(f"Disconnected from {self.client.url}: {named(state.reason)}. "
                               f"Reconnecting in {state.retry_in:g} s …", style="bold"))
            banner.display = True
        elif state.state == CONNECTED:
            banner.display = False

    def repaint_queue(self) -> None:
        if (queue := self.view(QueueView)) is not None:
            queue.repaint()

    @work(thread=True, exclusive=True, group="disk")
    def refresh_disk(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._disk_checked < DISK_REFRESH_SECONDS:
            return
        self._disk_checked = time.monotonic()
        try:
            health = self.client.health()
        except (ApiError, Unreachable):
            return
        self.call_from_thread(self.disk_refreshed, health)

    def disk_refreshed(self, health: dict[str, Any]) -> None:
        if (queue := self.view(QueueView)) is not None:
            queue.disk_free = health.get("download_path_free_bytes")
            queue.show_folder_problem(folder_problem(health))

    # --- actions ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Views and queue-wide actions only from the main screen (not under a dialog, not
        # before the service answered).
        if action in {"view", "add", "pause_all"}:
            return isinstance(self.screen, MainScreen)
        return True

    def action_view(self, name: str) -> None:
        main = self.get_screen_main()
        main.query_one(ContentSwitcher).current = name
        main.query_one(f"#{name}").focus_first()
        main.show_nav(name)

    def action_toggle_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_add(self) -> None:
        self.push_screen(AddScreen())

    def add_urls(self, urls: list[str], fields: dict[str, Any], screen: AddScreen) -> None:
        """Queue ``urls`` in a thread of their own, not a worker a closing screen or app
        cancels: ``run()`` waits for it when the person quits (the TUI no longer waits for
        its requests then, appliance.tui.threads, and the rest of a paste was lost). The
        answers go to ``screen`` while it is open, else to a toast."""
        def send() -> None:
            try:
                lines = add_each(self.client, urls, fields)
            finally:
                self.adding.discard(thread)
            if screen.is_attached:
                self.call_from_thread(screen.show_answers, lines)
            else:
                refused = sum(1 for line in lines if not line.plain.startswith("✓"))
                self.call_from_thread(self.notify, f"{len(lines) - refused} URLs queued, "
                                      f"{refused} refused",
                                      severity="error" if refused else "information")

        thread = threading.Thread(target=send, name=THREAD_NAME, daemon=True)
        self.adding.add(thread)  # before it starts: a quit at once waits for it too
        thread.start()

    def action_pause_all(self) -> None:
        self.api(self.client.resume_all if self.model.paused else self.client.pause_all)

    def item_action(self, action: str, item: dict[str, Any] | None,
                    after: Callable[[], None] | None = None) -> None:
        """``start``, ``pause``, ``cancel``, ``delete``, ``retry`` or ``details`` on an item."""
        if item is None:
            self.notify("Nothing selected.", severity="warning")
            return
        item_id = str(item["id"])
        if action == "details":
            self.push_screen(DetailsScreen(item))
        elif action == "delete":
            may_remove = bool((self.configuration.get("app") or {}).get("remove_files"))
            name = name_of(item, *ITEM_NAMES)
            self.push_screen(DeleteScreen(name, has_files=True, may_remove_files=may_remove),
                             lambda files: files is not None and self.api(
                                 self.delete_item, item_id, str(item.get("kind") or "done"),
                                 files, name, then=after))
        elif action == "retry":
            status = str(item.get("status") or "")
            if status not in ENDED:
                # A retry queues the item again and removes its ended record: of one still
                # waiting or running, it queued a second download beside the first.
                self.notify(f"{name_of(item, *ITEM_NAMES)} has not ended "
                            f"({status or 'no status'}): only a finished, failed or cancelled "
                            "item is queued again (cancel it first).", severity="warning")
                return
            self.api(self.client.retry, item, then=after)
        else:
            self.api(getattr(self.client, action), [item_id], then=after)

    def delete_item(self, item_id: str, kind: str, remove_file: bool, name: str) -> Any:
        """Delete an item of the queue or the history (in a worker). One of the queue may
        have ended while the person confirmed (or the request travelled): the queue has it no
        more, and "not found" was all they got, the finished item and its file kept; the
        history is asked then. One in neither is said so, and shown no more."""
        answer = self.client.delete([item_id], kind=kind, remove_file=remove_file)
        if kind == "queue" and isinstance(answer, dict) and answer.get(item_id) == "not found":
            answer = self.client.delete([item_id], kind="done", remove_file=remove_file)
        if isinstance(answer, dict) and answer.get(item_id) == "not found":
            self.call_from_thread(self.model.remove, item_id)
            return (f"{name} was deleted already (by another client, or by a key pressed "
                    "twice).")
        return answer

    @work(thread=True, group="api")
    def api(self, call: Callable[..., Any], *args: Any,
            then: Callable[[], None] | None = None, **kwargs: Any) -> None:
        """Run one API call off the UI; its answer, or the service's error text, is shown."""
        try:
            answer = call(*args, **kwargs)
        except (ApiError, Unreachable) as exc:
            self.call_from_thread(self.failed, exc)
            return
        self.call_from_thread(self.notify, describe(answer))
        if then is not None:
            self.call_from_thread(then)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not any(isinstance(s, MainScreen) for s in self.screen_stack):
            return
        for name, title in VIEWS.items():
            yield SystemCommand(title, f"Show the {title.lower()} view",
                                lambda name=name: self.action_view(name))
        yield SystemCommand("Add URLs", "Queue one or more URLs", self.action_add)
        yield SystemCommand("Pause or resume all", "Waiting downloads wait, or go on",
                            self.action_pause_all)

    def call_from_thread(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Textual's, but a worker's answer that comes as the app closes (a folder read, a
        disk check) is dropped (None): its view's widgets are going or gone, and its
        ``NoMatches`` ended the TUI on a traceback."""
        if not self.is_running:
            return None
        try:
            return super().call_from_thread(callback, *args, **kwargs)
        except NoMatches:
            if self.is_running:
                raise
            return None

    # A crash: the details go to a file and run() prints two short lines once the terminal
    # is restored (Textual's hook for an unhandled exception; it would print a full-screen
    # traceback with locals).
    def _fatal_error(self) -> None:
        error = self._exception
        path = write_crash_log(error)
        self.crash_report = (f"appliance tui stopped on an error: {type(error).__name__}: "
                             f"{error}\nThe details are in {path}\n")
        self._close_messages_no_wait()


def describe(answer: Any) -> str:
    """A one-line account of an API answer for a notification."""
    if isinstance(answer, list):
        # Not recursive: an array nested a few hundred deep (which JSON reads) ran out of
        # stack here, in the worker, and stopped the TUI.
        return "; ".join(_describe_one(a) for a in answer) or "done"
    return _describe_one(answer)


def _describe_one(answer: Any) -> str:
    if isinstance(answer, str):
        return answer
    if isinstance(answer, dict):
        if "status" in answer and "url" in answer:
            return f"{_text(answer['status'])}: {_text(answer['url'])}"
        if "message" in answer:
            return _text(answer["message"])
        return ", ".join(_text(v) for v in answer.values()) or "done"
    return "done"


def _text(value: Any) -> str:
    """A value of an answer as text; an array or object as JSON."""
    return json_text(value) if isinstance(value, dict | list) else str(value)


def run(client: ApiClient) -> int:
    """``appliance tui``: run until the person quits; the exit code."""
    app = ApplianceApp(client)
    app.run()
    finish_adds(app)
    client.close()
    if app.crash_report:
        sys.stderr.write(shown_lines(app.crash_report))
    return app.return_code or 0


def finish_adds(app: ApplianceApp) -> None:
    """Wait for the URLs still being queued when the app closed (each request is bounded)."""
    for thread in list(app.adding):
        sys.stderr.write("appliance: queueing the URLs given before quitting …\n")
        thread.join()
