"""systemd's protocol against the real service: ``appliance serve`` (gunicorn, the worker's
runtime, warm yt-dlp processes) with a real datagram socket in ``NOTIFY_SOCKET`` that records
each message with the sender's pid, and stderr given as the journal (``JOURNAL_STREAM``)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.journal import Journal
from support.journal import available as journal_available
from support.notify import Message, NotifySocket
from support.origin import MediaOrigin
from support.server import Server, wait_for

from appliance.runtime import Runtime
from appliance.systemd import JournalFormatter, Notifier, ServiceAgent, stderr_is_journal

# In the command line of the download processes (the zygote's, which they keep, too).
DOWNLOAD_PROCESS = "appliance.engine.download_process"

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("systemd")]

WATCHDOG_SEC = 2


class Service:
    def __init__(self, server: Server, notify: NotifySocket, journal: Journal | None) -> None:
        self.server, self.notify, self.journal = server, notify, journal

    def log(self, *journalctl: str) -> list[str]:
        """The service's lines as ``journalctl ARGS`` shows them (priority prefixes read and
        removed); without journald, the file's lines as they were written."""
        if self.journal is not None:
            return self.journal.read(*journalctl)
        return self.server.log().splitlines()

    @property
    def master(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid

    @property
    def worker(self) -> int:
        return next(p for p in self.server.pids() if _ppid(p) == self.master
                    and DOWNLOAD_PROCESS not in _cmdline(p))

    def statuses(self, after: int = 0) -> list[str]:
        return [m.fields["STATUS"] for m in self.notify.received()[after:]
                if "STATUS" in m.fields]

    def wait_status(self, text: str, after: int = 0) -> None:
        wait_for(lambda: text in self.statuses(after), timeout=60,
                 message=f"STATUS={text} (got {self.statuses(after)})")


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.fixture(scope="module")
def journal() -> Iterator[Journal | None]:
    if not journal_available():
        yield None  # the server's stderr is then a file given as the journal stream
        return
    journal = Journal()
    try:
        yield journal
    finally:
        journal.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, journal: Journal | None
            ) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("systemd")
    ports: dict[str, int] = {}

    def probe(message: Message) -> dict[str, bool] | None:
        # At the moment READY=1 arrives, is the runtime up? The websocket is the last part
        # the worker starts; gunicorn's master would have sent READY=1 long before it listens.
        if "READY" not in message.fields:
            return None
        with socket.socket() as s:
            websocket = s.connect_ex(("127.0.0.1", ports["http"] + 1)) == 0
        api = requests.get(f"http://127.0.0.1:{ports['http']}/api/health", timeout=5).ok
        return {"websocket": websocket, "api": api}

    notify = NotifySocket(hook=probe)
    with contextlib.ExitStack() as stack:
        if journal is not None:
            output: Any = stack.enter_context(journal.stream("appliance"))
            stream = Journal.stream_env(output)
        else:
            output = stack.enter_context((root / "server.log").open("ab"))
            stat = os.fstat(output.fileno())
            stream = f"{stat.st_dev}:{stat.st_ino}"
        server = Server(root, {
            "NOTIFY_SOCKET": notify.path,
            "WATCHDOG_USEC": str(WATCHDOG_SEC * 1_000_000),
            "WATCHDOG_PID": "1",
            "JOURNAL_STREAM": stream,
        }, output=output)
        ports["http"] = server.port
        server.start()
        try:
            yield Service(server, notify, journal)
        finally:
            if server.proc is not None:
                server.stop()
            notify.close()


def test_ready_comes_from_the_worker_once_its_runtime_is_up(service: Service) -> None:
    ready = service.notify.wait(lambda m: m.fields.get("READY") == "1", message="READY=1")
    assert ready.pid == service.worker != service.master
    assert [h for h in service.notify.hooked if h] == [{"websocket": True, "api": True}]
    senders = {m.pid for m in service.notify.received()}
    assert senders == {service.worker}, "gunicorn's master must not say READY=1"
    assert re.fullmatch(r"\d+ downloading, \d+ queued", ready.fields["STATUS"])


def test_watchdog_beats_while_the_engine_loop_answers(service: Service) -> None:
    beats = lambda: [m for m in service.notify.received() if m.fields.get("WATCHDOG") == "1"]  # noqa: E731
    before = len(beats())
    wait_for(lambda: len(beats()) >= before + 3, timeout=WATCHDOG_SEC * 5,
             message="three more WATCHDOG=1")
    assert {m.pid for m in beats()} == {service.worker}


def test_download_processes_cannot_speak_for_the_service(service: Service) -> None:
    children = wait_for(lambda: [p for p in service.server.pids()
                                 if DOWNLOAD_PROCESS in _cmdline(p)],
                        message="the warm download process")
    environ = Path(f"/proc/{children[0]}/environ").read_bytes().split(b"\0")
    names = {entry.split(b"=", 1)[0] for entry in environ}
    assert not names & {b"NOTIFY_SOCKET", b"WATCHDOG_USEC", b"WATCHDOG_PID"}


def test_status_follows_the_queue(service: Service, origin: MediaOrigin) -> None:
    server = service.server
    assert server.post("/api/system/pause").status_code == 200
    service.wait_status("0 downloading, 0 queued, paused")
    [clip] = server.post("/api/history", {"url": origin.clip_url}).json()
    service.wait_status("0 downloading, 1 queued, paused")
    assert server.post("/api/system/resume").status_code == 200
    server.wait_status(clip["id"], {"finished"})
    service.wait_status("0 downloading, 0 queued")
    mark = len(service.notify.received())
    [slow] = server.post("/api/history", {"url": origin.slow_url}).json()
    service.wait_status("1 downloading, 0 queued", after=mark)
    assert server.post("/api/history/cancel", {"ids": [slow["id"]]}).status_code == 200
    service.wait_status("0 downloading, 0 queued", after=mark)


def test_journalctl_priority_filter_finds_warnings_only(service: Service) -> None:
    if service.journal is None:
        # Without journald: the lines as the journal would receive them.
        text = "\n".join(service.log())
        assert re.search(r"^<4>appliance\.runtime: no credentials are set", text, re.M)
        assert re.search(r"^<6>gunicorn: Booting worker", text, re.M)
        return  # bootstrap.sh's systemd package brings journald: then journalctl itself
    wait_for(lambda: any("appliance ready" in line for line in service.log()),
             message="the start-up lines in the journal")
    everything = service.log()
    warnings = service.log("-p", "warning")
    assert any(line.startswith("gunicorn: Booting worker") for line in everything)
    assert any(line.startswith("appliance.runtime: no credentials are set")
               for line in warnings)
    assert not any("appliance ready" in line or "Booting worker" in line for line in warnings)
    assert not any(re.match(r"<\d>", line) for line in everything)  # read, not stored


def test_a_replaced_worker_says_ready_again_and_never_stopping(service: Service) -> None:
    """gunicorn replaces a worker that died (a reload too): the service goes on, so the old
    worker must not tell systemd STOPPING=1, and the new one says READY=1 when it is up."""
    old = service.worker
    os.kill(old, signal.SIGKILL)
    ready = service.notify.wait(lambda m: m.fields.get("READY") == "1" and m.pid != old,
                                timeout=60, message="READY=1 from the new worker")
    assert ready.pid == service.worker
    assert not any("STOPPING" in m.fields for m in service.notify.received())


def test_stopping_is_said_by_the_master_on_sigterm(service: Service) -> None:
    master = service.master
    assert service.server.stop() == 0
    stopping = service.notify.wait(lambda m: m.fields.get("STOPPING") == "1",
                                   message="STOPPING=1")
    assert stopping.pid == master


@contextlib.contextmanager
def engine_held(runtime: Runtime) -> Iterator[None]:
    """The engine's lock held by another thread, as a deadlocked engine's would be, for the
    block."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with runtime.engine._lock:
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10), "the engine's lock was not taken"
        yield
    finally:
        release.set()
        holder.join()


def test_no_heartbeat_while_the_engine_is_stuck(
        runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    """A real engine whose lock is held (as a deadlocked engine's would be) gets no
    WATCHDOG=1, so systemd restarts it; released, the beats come back."""
    notify = NotifySocket()
    agent = ServiceAgent(Notifier(notify.path), 0.4, runtime.engine.alive, runtime.engine.stats)
    beats = lambda: sum(m.fields.get("WATCHDOG") == "1" for m in notify.received())  # noqa: E731
    try:
        agent.ready()
        wait_for(lambda: beats() >= 2, message="two beats")
        caplog.set_level(logging.ERROR, "appliance.systemd")
        with engine_held(runtime):
            stuck_at = beats()
            wait_for(lambda: sum("did not answer" in r.message for r in caplog.records) >= 3,
                     message="three missed heartbeats")
            assert beats() <= stuck_at + 1  # one may have been on its way as the lock was taken
        after = beats()
        wait_for(lambda: beats() >= after + 2, message="beats after the engine answers again")
    finally:
        agent.stop()
        notify.close()


def test_journal_is_recognised_only_for_its_own_stream(tmp_path: Path) -> None:
    journal, other = tmp_path / "journal", tmp_path / "other"
    journal.touch()
    other.touch()
    stat = journal.stat()
    with journal.open("w") as a, other.open("w") as b:
        env = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        assert stderr_is_journal(env, a.fileno())
        assert not stderr_is_journal(env, b.fileno())
        assert not stderr_is_journal({"JOURNAL_STREAM": "x:y"}, a.fileno())
    record = logging.LogRecord("appliance.x", logging.ERROR, __file__, 1, "one\ntwo", None,
                               None)
    assert JournalFormatter().format(record) == "<3>appliance.x: one\n<3>two"


def test_a_status_line_asked_of_a_stuck_engine_holds_no_thread(runtime: Runtime) -> None:
    """The engine stuck between its last answer and the status line's figures: the agent's
    thread waited for them as long as the engine was stuck, and said nothing meanwhile (not
    even that the engine did not answer). It gives up on them, and goes on: here, to stop."""
    notify = NotifySocket()
    asked = threading.Event()

    def stats(**kwargs: Any) -> dict[str, Any]:
        asked.set()
        return runtime.engine.stats(**kwargs)

    agent = ServiceAgent(Notifier(notify.path), None, runtime.engine.alive, stats)
    try:
        agent.ready()
        with engine_held(runtime):
            asked.clear()
            agent.changed()  # a status line is due, the engine is held
            assert asked.wait(10), "the status line was not asked for"
            agent.stop()
            wait_for(lambda: not any(t.name == "systemd" for t in threading.enumerate()),
                     message="the agent's thread to end while the engine is stuck")
    finally:
        notify.close()
