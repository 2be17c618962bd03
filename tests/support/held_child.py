"""A download process of the checkout named by its first argument, with the holds of
``held_moves`` in the folder named by its second (see there): run by ``python -I``, as the
service runs its own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

CHECKOUT, FOLDER = sys.argv[1], Path(sys.argv[2])
del sys.argv[1:3]
sys.path.insert(0, CHECKOUT)

from appliance.engine import download_process  # noqa: E402  (from the checkout)

for name in download_process.UNUSED:  # left out before the holds import yt-dlp, as main does
    sys.modules.setdefault(name, None)


def hold(name: str) -> None:
    """Wait in the hold ``name`` until the test lets go (none: go on)."""
    try:
        with open(FOLDER / name, "rb") as fifo:
            fifo.read()
    except FileNotFoundError:
        pass


def held_moves() -> None:
    """The move of the finished files home (yt-dlp's, through ``file_moves``) waits once its
    first file is home."""
    from appliance.engine import file_moves

    move = file_moves.move_whole

    def moved_then_held(source: str, target: str) -> str:
        done = move(source, target)
        hold("moved")
        return done

    file_moves._Shutil.move = staticmethod(moved_then_held)


def held_questions() -> None:
    """The process waits once it has asked the engine (the question sent, not answered)."""
    from appliance.engine import child

    if not hasattr(child.Channel, "ask"):  # (the code before: it asked nothing)
        return

    def asked_then_held(channel: Any, message: dict[str, Any]) -> dict[str, Any]:
        channel.send(message)
        hold("asked")
        return channel._commands.get()

    child.Channel.ask = asked_then_held


held_moves()
held_questions()
download_process.main()
