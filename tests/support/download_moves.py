"""What a download's move home leaves: the download folder's files, a download process's
channel that sees them as each message leaves, and the end of a delete asked as it ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from falcon.testing import Result

from appliance.runtime import Runtime
from support.server import wait_for


def files(folder: Path) -> list[str]:
    """The files under ``folder`` (its hidden ones aside: the service's mark)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and not p.name.startswith("."))


class Seen:
    """A download process's channel to the service: what the download folder held as each
    message left. Asked, it goes on at once."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.said: list[tuple[str, str, list[str]]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.said.append((message["type"], message.get("status", ""), files(self.home)))

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        self.send(message)
        return {}


def nothing_left(rt: Runtime, item_id: str, answers: list[Result]) -> None:
    """Once the delete of running ``item_id`` is answered (``answers``) and the item ended:
    it was deleted, and nothing of it is left, in the download folder or the temporary one."""
    wait_for(lambda: answers and item_id not in rt.engine._runs, timeout=90,
             message="the delete and the item's end")
    assert answers[0].json == {item_id: "deleted"}, answers[0].text
    assert files(rt.settings.download_path) == []
    assert rt.engine.get(item_id) is None
    assert not (rt.settings.temp_path / item_id).exists()
