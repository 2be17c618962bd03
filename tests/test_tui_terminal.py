"""``appliance tui`` in a real terminal: an 80x24 tmux pane, keys sent with send-keys, the
screen read with capture-pane. A URL added through the Add view shows as finished, NO_COLOR
leaves colours out, and q leaves the terminal as it was."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.origin import MediaOrigin
from support.server import Server, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def is_grey(index: int) -> bool:
    """An xterm 256-colour index without hue: the grey ramp, black/white, or a cube entry
    with equal red, green and blue."""
    if index >= 232 or index in {0, 7, 8, 15}:
        return True
    if 16 <= index <= 231:
        red, green, blue = (index - 16) // 36, (index - 16) // 6 % 6, (index - 16) % 6
        return red == green == blue
    return False


class Pane:
    """One tmux server of our own (its own socket), one 80x24 pane."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", "tui", *(["-l"] if literal else []), *keys)

    def screen(self, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "tui")

    def wait(self, text: str, seconds: float = 60) -> str:
        return wait_for(lambda: text in (s := self.screen()) and s, timeout=seconds,
                        interval=0.1, message=f"{text!r} on the screen:\n{self.screen()}")

    def flag(self, name: str) -> str:
        return self.tmux("display-message", "-p", "-t", "tui", f"#{{{name}}}").strip()


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    pane = Pane(tmp_path / "tmux.sock")
    yield pane
    subprocess.run(["tmux", "-S", str(pane.socket), "kill-server"], capture_output=True,
                   timeout=30)


def assert_grey(pane: Pane) -> None:
    colours = {int(n) for n in re.findall(r"[34]8;5;(\d+)", pane.screen(escapes=True))}
    assert colours and all(is_grey(n) for n in colours), sorted(colours)


def test_tui_in_an_80x24_terminal(pane: Pane, make_server: Callable[..., Server],
                                  origin: MediaOrigin, tmp_path: Path) -> None:
    server = make_server("tmux")
    env = {"APPLIANCE_URL": server.url, "HOME": str(tmp_path), "NO_COLOR": "1",
           "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "XDG_STATE_HOME": str(tmp_path / "st"),
           "TERM": "xterm-256color", "PATH": "/usr/bin:/bin"}
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    # The pane's shell prints the exit code and then waits on cat, so the pane stays to be read.
    command = (f"env -i {exports} {shlex.quote(sys.executable)} -m appliance tui; "
               "echo TUI-EXIT=$?; exec cat")
    pane.tmux("-f", "/dev/null", "new-session", "-d", "-s", "tui", "-x", "80", "-y", "24",
              "sh", "-c", command)
    pane.wait("1 Queue")
    pane.wait("0 active")
    assert pane.flag("alternate_on") == "1"

    pane.keys("a")
    pane.wait("URLs (one per line)")
    pane.keys(origin.clip_url, literal=True)
    pane.keys("C-s")
    pane.wait(f"queued: {origin.clip_url}")
    pane.keys("Escape")
    screen = pane.wait("finished")
    row = next(line for line in screen.splitlines() if "finished" in line)
    assert row.startswith(" clip") and "100%" in row
    assert all(len(line) <= 80 for line in screen.splitlines())

    # NO_COLOR: Textual draws in monochrome; every colour on the screen is a grey.
    assert_grey(pane)

    # The subscriptions and files views fit 80 columns and stay grey too.
    pane.keys("5")
    screen = pane.wait("Subscriptions (0)")
    assert "Next run" in screen and all(len(line) <= 80 for line in screen.splitlines())
    assert_grey(pane)
    pane.keys("6")
    screen = pane.wait("entries · page 1/1")
    assert " clip" in screen and all(len(line) <= 80 for line in screen.splitlines())
    assert_grey(pane)

    pane.keys("q")
    pane.wait("TUI-EXIT=0")
    # The terminal as it was: main screen back, cursor shown, no mouse reporting left on.
    assert pane.flag("alternate_on") == "0"
    assert pane.flag("cursor_flag") == "1"
    assert pane.flag("mouse_any_flag") == "0"
    assert "1 Queue" not in pane.screen()


def test_what_the_service_sends_is_shown_never_obeyed(
        pane: Pane, make_server: Callable[..., Server], origin: MediaOrigin,
        tmp_path: Path) -> None:
    """A title a site gives its video, with terminal sequences in it: shown as control
    pictures; the terminal's title stays, as does its colour (a raw ``ESC [ 41 m`` would
    paint the rest of the line)."""
    server = make_server("hostile")
    title = "\x1b]2;PWNED\x07\x9b41m\x1b[41m"
    server.session.post(server.url + "/api/history", json={
        "url": origin.watch_url("clip", title=title)}, timeout=30).raise_for_status()
    env = {"APPLIANCE_URL": server.url, "HOME": str(tmp_path), "TERM": "xterm-256color",
           "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "XDG_STATE_HOME": str(tmp_path / "st"),
           "PATH": "/usr/bin:/bin"}
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    pane.tmux("-f", "/dev/null", "new-session", "-d", "-s", "tui", "-x", "80", "-y", "24",
              "sh", "-c", f"env -i {exports} {shlex.quote(sys.executable)} -m appliance tui")
    before = pane.flag("pane_title")
    screen = pane.wait("finished")
    assert "␛]2;PWNED�41m␛[41m" in screen, screen  # (Rich drops the BEL itself)
    assert pane.flag("pane_title") == before
    assert "41m" not in pane.screen(escapes=True).replace("␛[41m", "").replace("�41m", "")
