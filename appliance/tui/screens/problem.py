"""The one screen for a service that cannot be reached or refuses the credentials."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

ADVICE = {
    "unreachable": (
        "The service cannot be reached",
        "Is it running? On the service's box: systemctl status appliance\n"
        "(start it with systemctl start appliance, read its log with journalctl -u appliance).\n"
        "Another box or port: appliance tui --url http://HOST:PORT, or APPLIANCE_URL.",
    ),
    "refused": (
        "The service refused the credentials",
        "Give it its token: on the service's box, as the service's user, run\n"
        "appliance web showtoken and pass it in APPLIANCE_TOKEN, or put token = \"…\" in\n"
        "~/.config/appliance/client.toml (chmod 600). Or log in with a password:\n"
        "appliance tui --user appliance (asked at a prompt; set with appliance web passwd).",
    ),
    "error": ("The service answered with an error", "See its log: journalctl -u appliance"),
}


class ProblemScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("r", "dismiss(True)", "Try again"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, kind: str, url: str, reason: str) -> None:
        super().__init__()
        self.kind, self.url, self.reason = kind, url, reason

    def compose(self) -> ComposeResult:
        title, advice = ADVICE[self.kind]
        with Vertical(id="problem"):
            yield Static(f"[b]{title}[/b]", id="problem-title")
            yield Static(f"{self.url}: {self.reason}", id="problem-reason", markup=False)
            yield Static(advice, id="problem-advice", markup=False)
        yield Footer()
