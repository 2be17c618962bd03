"""Delete confirmation: keep the files, remove them too (when the service allows), or not."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static


class DeleteScreen(ModalScreen[bool | None]):
    """Dismissed with False (delete, keep files), True (delete with files) or None."""

    BINDINGS = [
        Binding("y", "dismiss(False)", "Delete"),
        Binding("f", "with_files", "Delete with files"),
        Binding("escape,n", "dismiss(None)", "Keep it"),
    ]

    def __init__(self, item: dict[str, Any], may_remove_files: bool) -> None:
        super().__init__()
        self.item, self.may_remove_files = item, may_remove_files

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool:
        return action != "with_files" or self.may_remove_files

    def action_with_files(self) -> None:
        self.dismiss(True)

    def compose(self) -> ComposeResult:
        title = self.item.get("title") or self.item.get("url")
        files = ("f deletes its files too." if self.may_remove_files
                 else "Its files stay (the service keeps files: YTP_REMOVE_FILES=false).")
        with Vertical(id="confirm"):
            yield Static(f"Delete {title}?", markup=False)
            yield Static(f"y deletes the record; {files} n or Esc keeps it.", markup=False)
        yield Footer()
