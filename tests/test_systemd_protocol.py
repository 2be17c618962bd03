"""systemd's notify protocol and journal priorities in this process (so that mutation testing
judges them; tests/test_systemd.py has the real service): a real datagram socket stands for
systemd's, the agent's engine is two functions the test steers."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.notify import NotifySocket
from support.server import wait_for

from appliance import systemd
from appliance.systemd import (
    JournalFormatter,
    Notifier,
    ServiceAgent,
    announce_stopping,
    claim_notify_socket,
    claimed,
    priority,
    status_line,
    stderr_formatter,
    watchdog_period,
)


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


@pytest.fixture
def no_claim(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The module's claimed values, empty for the test and restored after it."""
    fresh: dict[str, str] = {}
    monkeypatch.setattr(systemd, "_claimed", fresh)
    return fresh


def test_the_notify_socket_is_taken_from_the_environment(no_claim: dict[str, str]) -> None:
    environ = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "60000000",
               "WATCHDOG_PID": "", "PATH": "/bin"}
    claim_notify_socket(environ)
    assert environ == {"PATH": "/bin"}  # gone for gunicorn's master and the downloads
    assert claimed() == {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "60000000"}
    claimed()["NOTIFY_SOCKET"] = "changed"  # a copy: the claim is not changed by a reader
    assert claimed()["NOTIFY_SOCKET"] == "/run/systemd/notify"
    claim_notify_socket({})
    assert claimed()["NOTIFY_SOCKET"] == "/run/systemd/notify"


def test_the_process_environment_is_the_default(no_claim: dict[str, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "@appliance-test")
    claim_notify_socket()
    assert "NOTIFY_SOCKET" not in os.environ
    assert claimed() == {"NOTIFY_SOCKET": "@appliance-test"}


@pytest.mark.parametrize(("value", "seconds"), [
    ("2000000", 2.0), ("1", 1e-6), ("0", None), ("-5", None), ("sixty", None), ("", None),
    (None, None),
])
def test_the_watchdog_period(value: str | None, seconds: float | None) -> None:
    assert watchdog_period({} if value is None else {"WATCHDOG_USEC": value}) == seconds


def test_messages_reach_the_socket_as_systemd_reads_them(notify: NotifySocket) -> None:
    notifier = Notifier(notify.path)
    assert notifier.enabled
    assert notifier.send(ready="1", status="2 downloading, 0 queued")
    assert notifier.send(watchdog="1")
    got = notify.wait(lambda m: "WATCHDOG" in m.fields)
    assert [m.fields for m in notify.received()] == [
        {"READY": "1", "STATUS": "2 downloading, 0 queued"}, {"WATCHDOG": "1"}]
    assert got.pid == os.getpid()
    notifier.close()
    notifier.close()  # twice is fine
    assert notifier.send(status="again")  # a new socket after close
    notify.wait(lambda m: m.fields.get("STATUS") == "again")
    notifier.close()


def test_an_abstract_socket_address_is_used_as_such() -> None:
    name = f"appliance-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        notifier = Notifier("@" + name)
        assert notifier.send(ready="1")
        assert sock.recv(100) == b"READY=1"
        notifier.close()


def test_without_systemd_nothing_is_sent_and_nothing_raises(tmp_path: Path) -> None:
    for address in (None, ""):
        notifier = Notifier(address)
        assert not notifier.enabled and not notifier.send(ready="1")
    gone = Notifier(str(tmp_path / "no-socket"))
    assert gone.enabled and not gone.send(ready="1")
    gone.close()


def test_a_notify_socket_that_cannot_be_used_is_said_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under Type=notify systemd stops a service it never heard ready: the log says why it
    was not heard (once, not at every heartbeat), never that it told systemd it is ready. A
    relative path is refused as sd_notify refuses it, even with a socket there."""
    monkeypatch.chdir(tmp_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as there:
        there.bind("notify")
        there.setblocking(False)
        for address, why in ((str(tmp_path / "gone"), "No such file or directory"),
                             ("notify", "neither an absolute path nor an abstract socket")):
            caplog.clear()
            agent = ServiceAgent(Notifier(address), None, lambda _t: True, dict)
            with caplog.at_level(logging.DEBUG, logger="appliance.systemd"):
                agent.ready()
                assert not agent.notifier.send(status="again")
                agent.stop()
            [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert warning.startswith(f"systemd's notify socket {address!r} cannot be used (")
            assert why in warning
            assert warning.endswith("): systemd will stop the service as not started, or "
                                    "restart it as hung")
            assert not any("ready" in message for message in caplog.messages)
        with pytest.raises(BlockingIOError):
            there.recv(100)


def test_a_notify_socket_that_returns_is_said_and_used(
        caplog: pytest.LogCaptureFixture) -> None:
    """systemd's socket gone for a while (daemon-reexec makes it again): said when it
    fails and when it is used again."""
    folder = Path(tempfile.mkdtemp(prefix="notify-"))  # sun_path holds 107 bytes at most
    notifier = Notifier(str(folder / "notify"))
    with caplog.at_level(logging.INFO, logger="appliance.systemd"):
        assert not notifier.send(ready="1")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as back:
            back.bind(str(folder / "notify"))
            back.settimeout(10)
            assert notifier.send(ready="1") and notifier.send(status="again")
            assert [back.recv(100), back.recv(100)] == [b"READY=1", b"STATUS=again"]
    notifier.close()
    shutil.rmtree(folder)
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert caplog.messages[1] == f"systemd's notify socket {str(folder / 'notify')!r} is " \
        "used again"


def test_stopping_is_said_on_the_claimed_socket(notify: NotifySocket,
                                                no_claim: dict[str, str]) -> None:
    no_claim["NOTIFY_SOCKET"] = notify.path
    announce_stopping()
    message = notify.wait(lambda m: "STOPPING" in m.fields)
    assert message.fields == {"STOPPING": "1",
                              "STATUS": "stopping: running downloads are left resumable"}


@pytest.mark.parametrize(("stats", "line"), [
    ({}, "0 downloading, 0 queued"),
    ({"active_downloads": 2, "queued": 14}, "2 downloading, 14 queued"),
    ({"active_downloads": 1, "queued": 0, "system_paused": True},
     "1 downloading, 0 queued, paused"),
    ({"download_folder_problem": "disk gone", "system_paused": False},
     "0 downloading, 0 queued, waiting for the download folder's disk"),
    ({"download_folder_problem": "The disk … is full", "waiting_for_room": True},
     "0 downloading, 0 queued, waiting for room on a full disk"),
])
def test_the_status_line(stats: dict[str, Any], line: str) -> None:
    assert status_line(stats) == line


class Engine:
    """What the agent asks: whether the loop answers (and with which time limit), and the
    figures; both steered by the test."""

    def __init__(self) -> None:
        self.answering = True
        self.figures: dict[str, Any] = {"active_downloads": 0, "queued": 0}
        self.limits: list[float] = []

    def alive(self, limit: float) -> bool:
        self.limits.append(limit)
        return self.answering

    def stats(self, timeout: float | None = None) -> dict[str, Any]:
        return dict(self.figures)


def test_the_agent_says_ready_beats_and_follows_the_status(notify: NotifySocket) -> None:
    engine = Engine()
    agent = ServiceAgent(Notifier(notify.path), 0.4, engine.alive, engine.stats)
    beats = lambda: sum(m.fields.get("WATCHDOG") == "1" for m in notify.received())  # noqa: E731
    try:
        agent.ready()
        first = notify.wait(lambda m: "READY" in m.fields)
        assert first.fields == {"READY": "1", "STATUS": "0 downloading, 0 queued"}
        wait_for(lambda: beats() >= 3, message="three beats")
        assert set(engine.limits) == {0.1}  # half the half period: time left to send
        # an unchanged status is not sent again
        assert {"STATUS": "0 downloading, 0 queued"} not in [m.fields for m in notify.received()]
        engine.figures["queued"] = 3
        agent.changed()
        notify.wait(lambda m: m.fields.get("STATUS") == "0 downloading, 3 queued")
    finally:
        agent.stop()
    assert agent._thread is None


def test_a_watchdog_period_of_centuries_still_follows_the_status(notify: NotifySocket
                                                                 ) -> None:
    """WatchdogSec=1000y (an edited unit): the heartbeat is due in centuries, and the status
    still follows the queue."""
    engine = Engine()
    period = watchdog_period({"WATCHDOG_USEC": str(1000 * 365 * 86400 * 10**6)})
    assert period == threading.TIMEOUT_MAX
    agent = ServiceAgent(Notifier(notify.path), period, engine.alive, engine.stats)
    try:
        agent.ready()
        notify.wait(lambda m: m.fields.get("WATCHDOG") == "1")
        engine.figures["queued"] = 3
        agent.changed()
        notify.wait(lambda m: m.fields.get("STATUS") == "0 downloading, 3 queued")
    finally:
        agent.stop()


def test_no_beat_and_no_status_while_the_engine_does_not_answer(
        notify: NotifySocket, caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine()
    engine.answering = False
    agent = ServiceAgent(Notifier(notify.path), 0.2, engine.alive, engine.stats)
    with caplog.at_level(logging.ERROR, "appliance.systemd"):
        try:
            agent.ready()
            wait_for(lambda: len(engine.limits) >= 3, message="three asks")
            engine.figures["queued"] = 9
            agent.changed()
            wait_for(lambda: len(engine.limits) >= 5, message="two more asks")
            assert not any("WATCHDOG" in m.fields for m in notify.received())
            assert not any(m.fields.get("STATUS") == "0 downloading, 9 queued"
                           for m in notify.received())
            assert "did not answer within 0.05 s" in caplog.text
            engine.answering = True
            notify.wait(lambda m: "WATCHDOG" in m.fields, message="a beat once it answers")
            notify.wait(lambda m: m.fields.get("STATUS") == "0 downloading, 9 queued")
        finally:
            agent.stop()


def test_without_a_watchdog_the_agent_only_follows_the_status(notify: NotifySocket) -> None:
    engine = Engine()
    agent = ServiceAgent(Notifier(notify.path), None, engine.alive, engine.stats)
    try:
        agent.ready()
        notify.wait(lambda m: "READY" in m.fields)
        for queued in (1, 2):
            engine.figures["queued"] = queued
            agent.changed()
            notify.wait(lambda m, q=queued: m.fields.get("STATUS")
                        == f"0 downloading, {q} queued")
        assert engine.limits == []
        assert not any("WATCHDOG" in m.fields for m in notify.received())
    finally:
        agent.stop()


def test_without_systemd_the_agent_starts_no_thread(no_claim: dict[str, str]) -> None:
    engine = Engine()
    agent = ServiceAgent.from_claimed(engine.alive, engine.stats)
    assert agent.watchdog is None and not agent.notifier.enabled
    agent.ready()
    assert agent._thread is None
    agent.stop()
    no_claim.update(NOTIFY_SOCKET="/run/x", WATCHDOG_USEC="3000000")
    agent = ServiceAgent.from_claimed(engine.alive, engine.stats)
    assert (agent.notifier.address, agent.watchdog) == ("/run/x", 3.0)


@pytest.mark.parametrize(("level", "prio"), [
    (logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6),
    (logging.DEBUG, 7), (logging.ERROR + 5, 3), (logging.INFO - 1, 7), (logging.WARNING - 1, 6),
])
def test_journal_priorities(level: int, prio: int) -> None:
    assert priority(level) == prio


def test_stderr_is_formatted_for_the_journal_only_when_it_is_the_journal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    stat = os.fstat(2)
    monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
    assert isinstance(stderr_formatter("%(message)s"), JournalFormatter)
    monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino + 1}")
    plain = stderr_formatter("[%(levelname)s] %(message)s")
    assert not isinstance(plain, JournalFormatter)
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hi", None, None)
    assert plain.format(record) == "[WARNING] hi"
    assert JournalFormatter().format(record) == "<4>x: hi"


def test_the_agent_thread_is_a_daemon(notify: NotifySocket) -> None:
    """A stuck engine must not keep the worker from exiting."""
    engine = Engine()
    agent = ServiceAgent(Notifier(notify.path), None, engine.alive, engine.stats)
    try:
        agent.ready()
        assert agent._thread is not None and agent._thread.daemon
        assert agent._thread.name == "systemd"
        assert agent._thread in threading.enumerate()
    finally:
        agent.stop()
