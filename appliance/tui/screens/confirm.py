"""Delete confirmation: keep the files, remove them too (when the service allows), or not."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from ..format import named


class DeleteScreen(ModalScreen[bool | None]):
    """Dismissed with False (delete, keep files), True (delete with files) or None."""

    BINDINGS = [
        Binding("y", "dismiss(False)", "Delete"),
        Binding("f", "with_files", "Delete with files"),
        Binding("escape,n", "dismiss(None)", "Keep it"),
    ]

    def __init__(self, name: str, *, has_files: bool = False,
                 may_remove_files: bool = False) -> None:
        super().__init__()
        self.name_text, self.has_files = named(name), has_files
        self.may_remove_files = has_files and may_remove_files

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool:
        return action != "with_files" or self.may_remove_files

    def action_with_files(self) -> None:
        self.dismiss(True)

    def compose(self) -> ComposeResult:
        if self.may_remove_files:
            files = " f deletes its files too."
        elif self.has_files:
            files = " Its files stay (the service keeps files: YTP_REMOVE_FILES=false)."
        else:
            files = ""
        with Vertical(id="confirm"):
            yield Static(f"Delete {self.name_text}?", markup=False)
            yield Static(f"y deletes it.{files} n or Esc keeps it.", markup=False)
        yield Footer()
