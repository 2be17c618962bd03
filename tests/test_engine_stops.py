"""A stop of the service while a download waits for its process to start (a zygote's cold
start: seconds on a Pi, minutes on a box busy with other work): the download goes back to the
queue as interrupted, stored so before the store closes, and no process is started for it
after the stop.

Real processes: the runtime's own, and in place of the zygote a small program that never
says it is ready (a start in progress, as long as it lasts)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import pytest
from support.origin import MediaOrigin
from support.procs import descendants
from support.server import wait_for

from appliance.engine import launcher
from appliance.engine.downloading import INTERRUPTED
from appliance.runtime import Runtime
from appliance.store import ItemStore

# A zygote that never gets ready: it holds the socket the launcher gave it until it ends, and
# ends by itself within a minute (a test that fails leaves nothing for long).
NEVER_READY = [sys.executable, "-c",
               "import socket, sys, time\ncontrol = socket.socket(fileno=int(sys.argv[2]))\n"
               "time.sleep(60)\n"]


def test_a_stop_while_a_download_waits_for_its_process_leaves_it_interrupted(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The stop waited 30 s for such a download's thread, then closed the store under it:
    the item stayed 'preparing' in the store, and once the zygote's start failed a fresh
    process was spawned for it after the pool had closed."""
    rt = start_runtime()
    [added] = rt.engine.add([{"url": origin.clip_url, "auto_start": False}])
    wait_for(lambda: rt.engine.get(added.id).extractor, timeout=60,
             message="the item's info")
    starts = rt.engine.pool._launcher
    monkeypatch.setattr(launcher, "CHILD", NEVER_READY)
    rt.engine.pool.renew()  # its next process comes from a new zygote (a yt-dlp update)
    rt.engine.start_items([added.id])
    wait_for(lambda: starts._starting is not None and rt.engine.get(added.id).status
             == "preparing", timeout=60, message="the download to wait for a zygote")
    rt.stop()

    assert not rt.engine._runs, "a run outlived the stop"
    store = ItemStore(rt.settings.database_file)
    try:
        stored = store.get(added.id)
    finally:
        store.close()
    assert (stored.kind, stored.status, stored.msg) == ("queue", "pending", INTERRUPTED)
    assert not [p for p in descendants(os.getpid()) if p.state != "Z"
                and "download_process" in command_line(p.pid)], "a process outlived the stop"


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # it ended while we looked
        return ""
