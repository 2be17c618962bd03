"""Add: one or many URLs (a paste of several lines), preset, folder, the download fields,
auto-start; then what the service answered for each URL."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Checkbox, Footer, Input, Label, Select, Static, TextArea

from appliance.client import ApiClient, adding
from appliance.client.shown import removed_options

from .. import format as fmt


def urls_in(text: str) -> list[str]:
    """The URLs of a paste: one per line or separated by spaces; blank lines and ``#``
    comments skipped."""
    found: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            found.extend(line.split())
    return found


def names_in(entries: Any, key: str) -> list[str]:
    """The ``key`` texts of the objects in ``entries`` (the configuration's presets or
    folders); what is not one is left out."""
    return [entry[key] for entry in entries or []
            if isinstance(entry, dict) and isinstance(entry.get(key), str)]


def answer_line(url: str, answer: dict[str, Any] | None, error: str | None) -> Text:
    if error is not None:
        return Text.assemble(("✗ ", "red"), f"{url}: {error}")
    assert answer is not None
    # The service's parts each by its start and end: 200 answers of a megabyte each were
    # laid out whole in the form (an answer is bounded at 32 MiB, not its lines).
    status = fmt.named(str(answer.get("status", "queued")))
    line = Text.assemble(("✓ ", "green"), f"{status}: {url}")
    if removed := removed_options(answer):
        line.append(f" (removed options: {fmt.named(removed)})", style="yellow")
    return line


class AddScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("ctrl+s", "submit", "Queue them"),
        Binding("escape", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        configuration = self.app.configuration
        # Names are the service's text: shown as Text, never read as markup, and by their
        # start and end (a preset's and a field's name of a megabyte each kept this screen
        # from opening for 9 s at a load of 3).
        presets = [(Text(fmt.named(name)), name)
                   for name in names_in(configuration.get("presets"), "name")]
        folders = names_in(configuration.get("folders"), "path")
        with VerticalScroll(id="add"):
            yield Label("URLs (one per line) · Ctrl+S queues them · Esc closes")
            yield TextArea(id="add-urls", soft_wrap=True, compact=True)
            with Horizontal(classes="add-row"):
                yield Label("Preset")
                yield Select(presets, id="add-preset", allow_blank=True, prompt="default",
                             compact=True)
            with Horizontal(classes="add-row"):
                yield Label("Folder")
                yield Input(id="add-folder", placeholder="in the download folder",
                            suggester=SuggestFromList(folders, case_sensitive=False),
                            compact=True)
            with Horizontal(classes="add-row"):
                yield Label("Template")
                yield Input(id="add-template", placeholder="%(title)s.%(ext)s", compact=True)
            with Horizontal(classes="add-row"):
                yield Label("Options")
                yield Input(id="add-cli", placeholder="yt-dlp options", compact=True)
            for field in configuration.get("dl_fields") or []:
                if not isinstance(field, dict) or not field.get("field"):
                    continue  # a field the service cannot take a value for
                with Horizontal(classes="add-row"):
                    yield Label(Text(fmt.named(str(field.get("name") or field["field"]))))
                    if field.get("kind") == "bool":
                        yield Checkbox(classes="dl-field", name=str(field["field"]), compact=True)
                    else:
                        yield Input(classes="dl-field", name=str(field["field"]),
                                    placeholder=fmt.named(str(field.get("description") or "")),
                                    compact=True)
            yield Checkbox("Start at once", value=True, id="add-auto-start", compact=True)
            yield Static("", id="add-answers")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#add-urls").focus()

    def fields(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        preset = self.query_one("#add-preset", Select).value
        if isinstance(preset, str):
            body["preset"] = preset
        for name in ("folder", "template", "cli"):
            value = self.query_one(f"#add-{name}", Input).value.strip()
            if value:
                body[name] = value
        body["auto_start"] = self.query_one("#add-auto-start", Checkbox).value
        dl_fields = {}
        for widget in self.query(".dl-field"):
            value = widget.value
            if value not in ("", False):
                dl_fields[widget.name] = value
        if dl_fields:
            body["dl_fields"] = dl_fields
        return body

    def action_submit(self) -> None:
        urls = urls_in(self.query_one("#add-urls", TextArea).text)
        if not urls:
            self.notify("Paste at least one URL.", severity="warning")
            return
        self.query_one("#add-answers", Static).update("Queueing …")
        # The app's worker, not this screen's: Esc or q while they are sent loses none.
        self.app.add_urls(urls, self.fields(), self)

    def show_answers(self, lines: list[Text]) -> None:
        self.query_one("#add-answers", Static).update(shown(lines))
        if all(line.plain.startswith("✓") for line in lines):
            self.query_one("#add-urls", TextArea).text = ""


BATCH = adding.BATCH  # URLs to a request (a test sends one each)
SHOWN_LINES = 200  # answer lines shown at most (the refused first); the rest are counted


def add_each(client: ApiClient, urls: list[str], fields: dict[str, Any]) -> list[Text]:
    """A line for each URL queued with ``fields`` (:func:`queue_each`), in the paste's
    order."""
    return [answer_line(added.url, added.answer, added.error)
            for added in adding.queue_each(client, urls, fields, batch_size=BATCH)]


def shown(lines: list[Text]) -> Text:
    """The answers, all of them when they are few; else a count, the refused (as many as
    fit) and then the queued."""
    if len(lines) <= SHOWN_LINES:
        return Text("\n").join(lines)
    refused = [line for line in lines if not line.plain.startswith("✓")]
    queued = [line for line in lines if line.plain.startswith("✓")]
    kept = (refused + queued)[:SHOWN_LINES]
    head = Text(f"{len(queued):,} queued, {len(refused):,} refused; {len(lines) - len(kept):,} "
                "more lines not shown", style="bold")
    return Text("\n").join([head, *kept])
