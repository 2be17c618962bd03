"""The service's start and stop as the person who runs it sees them: gunicorn's configuration
(one worker, always), the serving runtime's websocket in front of the real queue, a database
another program holds said in one line rather than a traceback, and a stop while a download
runs that leaves it to resume at the next start."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import falcon.testing
import pytest
from conftest import make_settings
from gunicorn.arbiter import Arbiter
from gunicorn.errors import AppImportError
from support.origin import MediaOrigin
from support.procs import living_in_group, processes
from support.server import Server, free_port_pair, wait_for
from websockets.sync.client import connect

from appliance.config import Settings
from appliance.engine.downloading import INTERRUPTED
from appliance.runtime import Runtime
from appliance.server import (
    GRACEFUL_TIMEOUT,
    OPEN_FILES,
    REQUEST_THREADS,
    REQUESTS_DRAIN,
    ApplianceServer,
    JournalLogger,
    post_worker_init,
    raise_open_files,
    request_threads,
    when_ready,
)
from appliance.slots import IMAGE_FETCHES, OUTSIDE_WAITS
from appliance.store import ItemStore, database


def worker_of(server: ApplianceServer) -> SimpleNamespace:
    """gunicorn's worker, as the hooks read it."""
    return SimpleNamespace(app=server, cfg=server.cfg)


def test_gunicorn_runs_one_worker_with_a_thread_for_each_answer_that_lasts(
        tmp_path: Path) -> None:
    settings = make_settings(tmp_path, YTP_MAX_TRANSFERS="3", YTP_MAX_STREAMS="5",
                             YTP_PLAYER_MAX_FFMPEG="2", YTP_EXTRACT_INFO_TIMEOUT="300")
    assert request_threads(settings) == REQUEST_THREADS + 3 + 5 + 2 + IMAGE_FETCHES + OUTSIDE_WAITS
    cfg = ApplianceServer(settings).cfg
    assert cfg.workers == 1  # a second worker would be a second engine
    assert cfg.threads == request_threads(settings)
    assert cfg.worker_class_str == "appliance.http_worker.RequestBufferingWorker"
    assert cfg.preload_app is False  # the runtime is built in the worker, after the fork
    assert cfg.max_requests == 0  # a worker that restarts would drop every download
    assert cfg.timeout == 330  # a URL's info may take the extract timeout
    assert cfg.bind == [f"{settings.host}:{settings.port}"]
    assert cfg.proc_name == "appliance"
    assert cfg.graceful_timeout == GRACEFUL_TIMEOUT == 30  # within systemd's TimeoutStopSec (45)
    assert cfg.forwarded_allow_ips == ["127.0.0.1", "::1"]  # gunicorn's own default
    proxied = ApplianceServer(make_settings(tmp_path, YTP_TRUSTED_PROXIES="10.0.0.7,10.0.0.8",
                                            YTP_EXTRACT_INFO_TIMEOUT="1")).cfg
    # who may say the client used https
    assert proxied.forwarded_allow_ips == ["10.0.0.7/32", "10.0.0.8/32"]
    assert proxied.timeout == 60  # never below a minute, whatever the extract timeout


def test_the_worker_loads_the_app_under_its_base_path(tmp_path: Path) -> None:
    server = ApplianceServer(make_settings(tmp_path, YTP_BASE_PATH="/media"))
    client = falcon.testing.TestClient(server.load())
    try:
        # under the prefix a reverse proxy keeps, and without it
        assert client.simulate_get("/media/api/ping").json == {"status": "pong"}
        assert client.simulate_get("/api/ping").json == {"status": "pong"}
        # what the runtime built for the app's other rooms answers too
        assert client.simulate_get("/media/api/notifications").status_code == 200
    finally:
        server.runtime.stop()


def test_a_worker_gunicorn_aborts_stops_its_runtime(tmp_path: Path) -> None:
    """gunicorn aborts a worker that missed its timeout (SIGABRT): its runtime stops as at any
    exit (live streams end, downloads are left to resume), by the hook the configuration
    names."""
    server = ApplianceServer(make_settings(tmp_path))
    server.load()
    assert not server.runtime.stopping.is_set()
    server.cfg.worker_abort(SimpleNamespace(app=server))  # gunicorn's worker, as it is read
    assert server.runtime.stopping.is_set()


@contextlib.contextmanager
def held(database: Path) -> Iterator[None]:
    """The database's write lock, held by another connection (as an sqlite3 shell holds it
    inside a transaction)."""
    ItemStore(database).close()  # made, as a service that ran before leaves it
    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        other.close()


def test_a_database_another_program_holds_is_said_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 200)  # the lock's wait, not its words
    settings = make_settings(tmp_path)
    with held(settings.database_file), pytest.raises(AppImportError) as refused:
        ApplianceServer(settings).load()
    assert str(refused.value) == (
        f"appliance: the database {settings.database_file} cannot be opened (database is "
        "locked): another program holds it (an sqlite3 shell, a backup tool): close that "
        "program, then start the service again")


def test_a_database_that_cannot_be_read_is_said_in_one_line(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.database_file.parent.mkdir(parents=True)
    settings.database_file.mkdir()  # a folder where the file should be
    with pytest.raises(AppImportError) as refused:
        ApplianceServer(settings).load()
    assert str(refused.value).startswith(
        f"appliance: the database {settings.database_file} cannot be opened (")
    assert str(refused.value).endswith(
        "): check the disk under it, and that the service's user may read and write it")


def test_serve_says_the_held_database_and_stops_without_a_traceback(tmp_path: Path) -> None:
    http = free_port_pair()
    env = {**os.environ, "YTP_CONFIG_PATH": str(tmp_path / "config"),
           "YTP_DOWNLOAD_PATH": str(tmp_path / "downloads"), "YTP_TEMP_PATH": str(tmp_path / "t"),
           "YTP_PORT": str(http), "YTP_WS_PORT": str(http + 1), "YTP_ZEROCONF": "false",
           "YTP_YTDLP_INDEX_URL": "http://127.0.0.1:9/simple"}
    database = tmp_path / "config" / "appliance.db"
    with held(database):
        done = subprocess.run([sys.executable, "-m", "appliance", "serve"], env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 4  # gunicorn's "App failed to load": systemd starts it again
    assert "Traceback" not in done.stderr
    said = f"appliance: the database {database} cannot be opened (database is locked)"
    assert any(line.startswith(said) for line in done.stderr.splitlines()), done.stderr


def test_a_stop_while_a_download_runs_leaves_it_to_resume(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(origin, "slow_rate", 512 * 1024)
    rt = start_runtime()
    [added] = rt.engine.add([{"url": origin.slow_url}])
    run = wait_for(lambda: (r := rt.engine._runs.get(added.id)) and r.worker
                   and (rt.engine.get(added.id).downloaded_bytes or 0) > 100_000 and r,
                   timeout=60, message="some bytes")
    pid = run.worker.pid
    rt.stop()
    assert not living_in_group(pid), "the download process outlived the stop"
    settings: Settings = rt.settings
    store = ItemStore(settings.database_file)
    try:
        stored = store.get(added.id)
    finally:
        store.close()
    assert (stored.status, stored.msg) == ("pending", INTERRUPTED)
    assert list((settings.temp_path / added.id).rglob("*.part"))
    origin.clear_requests()
    origin.slow_rate = 200_000_000
    again = start_runtime()
    wait_for(lambda: again.engine.get(added.id).status == "finished", timeout=120,
             message="the download to resume and finish")
    ranges = [r.range for r in origin.requests_for(origin.slow_url) if r.range]
    assert any(not r.startswith("bytes=0-") for r in ranges), ranges


def test_a_stop_while_an_answer_is_being_sent_still_stops_the_runtime(
        tmp_path: Path, origin: MediaOrigin) -> None:
    """`systemctl stop` while a file is being sent to a slow client (a phone, a TV): the
    worker waited gunicorn's whole graceful_timeout for it before its exit stopped the
    runtime, and the master kills the worker at that same timeout: the runtime's stop was
    cut at its start (the running download left 'downloading', the notifier's last events
    and the database's close lost). The open answers get part of the time now, the runtime's
    stop the rest."""
    server = Server(tmp_path / "service").start()
    done = threading.Event()
    try:
        [held] = server.post("/api/history", {"url": origin.stall_url(300_000)}).json()
        wait_for(lambda: (server.item(held["id"]).get("downloaded_bytes") or 0) > 100_000,
                 timeout=60, message="some bytes")
        with (server.download_path / "film.mkv").open("wb") as film:
            film.truncate(1 << 30)
        with socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect(("127.0.0.1", server.port))
            client.sendall(b"GET /api/download/film.mkv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert client.recv(64).startswith(b"HTTP/1.1 200 ")

            def trickle() -> None:  # at 80 KiB/s: never cut as stalled, nor as lagging
                with contextlib.suppress(OSError):
                    while client.recv(8192) and not done.wait(0.1):
                        pass

            reader = threading.Thread(target=trickle, daemon=True)
            reader.start()
            try:
                assert server.stop(timeout=60) == 0
            finally:
                done.set()
                reader.join(timeout=10)
    finally:
        if server.proc is not None:
            server.stop()
    log = server.log()
    assert "answer to GET /api/download/film.mkv was not taken" not in log  # still sent
    assert "takes its answer at less than" not in log
    # ... until the stop's time for it was up: then cut off, so that the exit does not wait
    assert "answers not finished in the 15 s a stop gives them, cut off: 1" in log
    assert "appliance stopped" in log, log[-3000:]
    store = ItemStore(tmp_path / "service" / "config" / "appliance.db")
    try:
        stored = store.get(held["id"])
    finally:
        store.close()
    assert (stored.status, stored.msg) == ("pending", INTERRUPTED)


def test_the_serving_runtimes_websocket_drives_the_real_queue(
        tmp_path: Path, origin: MediaOrigin, caplog: pytest.LogCaptureFixture) -> None:
    """The runtime ``appliance serve`` builds (with its sidecar) hands the websocket the
    queue itself: an item added there is the engine's, an unknown id is said, a delete goes.
    Its start says, first, that the API is open to anyone (no credentials are set)."""
    port = free_port_pair()
    runtime = Runtime(make_settings(tmp_path, YTP_HOST="127.0.0.1", YTP_PORT=str(port),
                                    YTP_ZEROCONF="false"))
    runtime.start()
    try:
        said = [r.getMessage() for r in caplog.records if r.name == "appliance.runtime"]
        assert said[0] == (
            "no credentials are set (YTP_AUTH_USERNAME/YTP_AUTH_PASSWORD or `appliance web "
            f"passwd`): the API is open to anyone who can reach 127.0.0.1:{port}")
        with connect(f"ws://127.0.0.1:{port + 1}/ws", open_timeout=10) as ws:

            def next_event(name: str) -> dict:
                while True:
                    frame = json.loads(ws.recv(timeout=30))
                    if frame["event"] == name:
                        return frame["data"]["data"]

            ws.send(json.dumps({"event": "add_url",
                                "data": {"url": origin.clip_url, "auto_start": False}}))
            status = next_event("item_status")
            assert (status["status"], status["url"]) == ("queued", origin.clip_url)
            assert runtime.engine.get(status["id"]).status == "pending"
            ws.send(json.dumps({"event": "item_start", "data": [status["id"], "no-such-id"]}))
            assert next_event("log_error")["message"] == "no-such-id: item not found"
            ws.send(json.dumps({"event": "item_cancel", "data": "no-such-id"}))
            assert next_event("log_error")["message"] == "Item not found."  # (one id: as YTPTube)
            # Flasharr's ENGINE_STATS: the engine's live figures with the store's counts
            stats = runtime.service.engine_stats()
            assert (stats["queued"], stats["active_downloads"]) == (1, 0)
            # the yt-dlp updater tells clients on the same bus (its index is closed here)
            assert runtime.ytdlp.update().state == "failed"
            warning = next_event("log_warning")
            assert (warning["title"], warning["state"]) == ("yt-dlp update", "failed")
            ws.send(json.dumps({"event": "item_delete", "data": {"id": status["id"]}}))
            assert next_event("item_deleted")["id"] == status["id"]
            assert runtime.engine.get(status["id"]) is None
    finally:
        runtime.stop()
    # every part the start wired to the bus took its events (systemd's status line too)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def workers_of(master: int) -> list[int]:
    return [p.pid for p in processes().values() if p.ppid == master and p.state != "Z"]


def _open_files(pid: int) -> int:
    """The soft limit of open files of process ``pid``."""
    line = next(x for x in Path(f"/proc/{pid}/limits").read_text().splitlines()
                if x.startswith("Max open files"))
    return int(line.split()[3])


def test_the_service_raises_its_open_files_limit(tmp_path: Path) -> None:
    """Started with systemd's soft limit of 1,024 (the HTTP port's 1,000 connections alone
    nearly fill it), the service and its worker hold the hard one (at most OPEN_FILES)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        server = Server(tmp_path / "service").start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert server.proc is not None
        [worker] = workers_of(server.proc.pid)
        wanted = OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES)
        assert wanted > 1024, "the test machine's hard limit leaves nothing to raise"
        assert (_open_files(server.proc.pid), _open_files(worker)) == (wanted, wanted)
    finally:
        server.stop()


def test_the_soft_limit_of_open_files_is_raised_to_the_hard_one() -> None:
    """In this process (the served one's is test_the_service_raises_its_open_files_limit):
    from systemd's soft 1,024 to the hard limit, at most OPEN_FILES."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES)
    assert wanted > 1024, "the test machine's hard limit leaves nothing to raise"
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        assert raise_open_files() == wanted == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_gunicorns_lines_carry_journal_priorities_when_stderr_is_the_journal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = os.fstat(2)
    monkeypatch.setenv("JOURNAL_STREAM", f"{stderr.st_dev}:{stderr.st_ino}")
    cfg = ApplianceServer(make_settings(tmp_path)).cfg
    logger = JournalLogger(cfg)
    [handler] = logger.error_log.handlers
    record = logging.LogRecord("gunicorn.error", logging.WARNING, __file__, 1, "Worker %s",
                               ("exiting",), None)
    assert handler.format(record) == "<4>gunicorn: Worker exiting"


def test_a_reload_or_a_worker_more_leaves_the_one_worker_and_its_downloads(
        tmp_path: Path, origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch) -> None:
    """`systemctl reload` (SIGHUP) and SIGTTIN made gunicorn start a second worker beside the
    running one (SIGUSR2, a second master and its worker, where the command can be run again
    as it is under systemd): a second engine, which recovered the running download and
    started it again, then could not listen on the websocket's port and stopped the whole
    service. Now the one worker goes on, and its download finishes as the only run of it."""
    monkeypatch.setattr(origin, "slow_rate", 256 * 1024)
    origin.clear_requests()
    server = Server(tmp_path / "service").start()
    try:
        assert server.proc is not None
        [worker] = workers_of(server.proc.pid)
        [slow] = server.post("/api/history", {"url": origin.slow_url}).json()
        wait_for(lambda: (server.item(slow["id"]).get("downloaded_bytes") or 0) > 100_000,
                 timeout=60, message="some bytes")
        asked = len(origin.requests_for("/slow.mp4"))  # its info, then its download
        for signum, said in ((signal.SIGHUP, "reload (SIGHUP) ignored"),
                             (signal.SIGTTIN, "SIGTTIN ignored"),
                             (signal.SIGUSR2, "SIGUSR2 ignored")):
            os.kill(server.proc.pid, signum)
            wait_for(lambda said=said: said in server.log(), timeout=30,
                     message=f"the master to say {said!r} ({server.log_path})")
        assert server.proc.poll() is None, server.log()[-3000:]
        assert workers_of(server.proc.pid) == [worker]
        assert server.item(slow["id"])["status"] == "downloading"
        origin.slow_rate = 200_000_000  # the rest
        done = server.wait_status(slow["id"], {"finished", "error"}, timeout=120)
        assert done["status"] == "finished", done
        assert (server.download_path / done["filename"]).read_bytes() == \
            origin.path_for(origin.slow_url).read_bytes()
        assert len(origin.requests_for("/slow.mp4")) == asked  # downloaded once, not again
        assert "Booting worker" not in server.log().split("reload (SIGHUP) ignored")[1]
    finally:
        server.stop()


def test_the_master_starts_no_worker_beside_the_one(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """gunicorn's own master, in this process: its answers to SIGHUP and SIGTTIN, as the
    service's configuration leaves them, start no worker (the fork is only recorded here: a
    worker forked from the test process would be a second test run)."""
    arbiter = Arbiter(ApplianceServer(make_settings(tmp_path)))
    forked: list[str] = []
    arbiter.spawn_worker = lambda: forked.append("a worker")
    arbiter.reexec = lambda: forked.append("a second master")
    handlers = {signum: signal.getsignal(signum)
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)}
    try:
        for signum in handlers:  # as gunicorn's init_signals sets them: queued for its loop
            signal.signal(signum, arbiter.signal)
        when_ready(arbiter)
        arbiter.handle_hup()
        arbiter.handle_ttin()
        arbiter.handle_usr2()
        for signum in handlers:  # the stop signals still reach gunicorn's queue
            signal.getsignal(signum)(signum, None)
            assert arbiter.SIG_QUEUE.get_nowait() == signum
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert forked == [] and arbiter.num_workers == 1
    said = [r.getMessage() for r in caplog.records if r.name == "appliance.server"]
    assert said[:2] == [
        "reload (SIGHUP) ignored: the service runs on, downloads and all; settings in the "
        "environment or config.yml take effect at a restart (`systemctl restart appliance`; "
        "running downloads resume)",
        "SIGTTIN ignored: the service runs one worker, always (its download engine must be "
        "single)"]
    assert len(said) == 3
    assert said[2] == ("SIGUSR2 ignored: an upgrade in place would run a second service beside "
                       "this one; restart it instead (`systemctl restart appliance`; running "
                       "downloads resume)")


def test_a_websocket_port_taken_since_the_check_is_said_in_one_line(tmp_path: Path) -> None:
    """`appliance serve` checks both ports before gunicorn starts; a program that takes the
    websocket's port before the worker listens on it (a first start's long migration leaves
    time) was a traceback and "Worker failed to boot". Now one line, as a failed load."""
    port = free_port_pair()
    server = ApplianceServer(make_settings(tmp_path, YTP_HOST="127.0.0.1", YTP_PORT=str(port),
                                           YTP_ZEROCONF="false"))
    server.load()
    try:
        with socket.socket() as other, pytest.raises(AppImportError) as refused:
            other.bind(("127.0.0.1", port + 1))
            other.listen()
            post_worker_init(worker_of(server))
    finally:
        server.runtime.stop()  # as gunicorn's worker_exit does
    said = str(refused.value)
    assert said.startswith(f"appliance: the websocket cannot listen on 127.0.0.1:{port + 1} (")
    assert "address already in use" in said and "\n" not in said
    assert "[Errno" not in said  # the reason's words, not the exception's form
    assert said.endswith("): another program holds the port, or YTP_HOST is no address of "
                         "this machine")


def test_the_workers_sigterm_ends_live_streams_before_gunicorns_own_stop(
        tmp_path: Path) -> None:
    """The worker's hook starts the runtime, then wraps gunicorn's SIGTERM handler (which only
    stops accepting and waits for open requests): the runtime is told it stops first, so that
    live streams end rather than hold that wait, then gunicorn's own handler runs."""
    port = free_port_pair()
    server = ApplianceServer(make_settings(tmp_path, YTP_HOST="127.0.0.1", YTP_PORT=str(port),
                                           YTP_ZEROCONF="false"))
    server.load()
    before = signal.getsignal(signal.SIGTERM)
    gunicorns: list[tuple[int, object]] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: gunicorns.append((signum, frame)))
    try:
        post_worker_init(worker_of(server))
        with connect(f"ws://127.0.0.1:{port + 1}/ws", open_timeout=10):
            pass  # started: the websocket listens
        wrapped = signal.getsignal(signal.SIGTERM)
        assert callable(wrapped) and not server.runtime.stopping.is_set()
        # open answers get part of the master's time, the runtime's stop the rest
        assert server.cfg.graceful_timeout == REQUESTS_DRAIN < GRACEFUL_TIMEOUT
        wrapped(signal.SIGTERM, "the frame")
        assert server.runtime.stopping.is_set()
        assert gunicorns == [(signal.SIGTERM, "the frame")]
    finally:
        signal.signal(signal.SIGTERM, before)
        server.runtime.stop()


def test_the_runtime_says_it_is_ready_and_its_log_lines_stop_with_it(
        start_runtime: Callable[..., Runtime], caplog: pytest.LogCaptureFixture) -> None:
    """The journal's line that the start is done names the download folder and the
    websocket's port; a stopped runtime's bus hears no more of the service's log lines (the
    next runtime in the process, a test's, would have told its clients twice)."""
    with caplog.at_level(logging.INFO, logger="appliance"):
        rt = start_runtime()
    settings = rt.settings
    assert (f"appliance ready: downloads in {settings.download_path}, websocket on port "
            f"{settings.websocket_port}") in caplog.messages
    heard: list[str] = []
    rt.bus.subscribe(lambda event: heard.append(str(event.data)))
    logging.getLogger("appliance.test").warning("while it runs")
    rt.stop()
    logging.getLogger("appliance.test").warning("once it stopped")
    assert any("while it runs" in said for said in heard)
    assert not any("once it stopped" in said for said in heard)


def test_the_websockets_delete_removes_files_only_where_the_settings_allow(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    """The websocket's delete with its remove_file flag: the file goes only when
    YTP_REMOVE_FILES allows it, else the item alone goes."""
    rt = start_runtime(YTP_REMOVE_FILES="true")
    kept, removed = rt.engine.add([{"url": origin.clip_url}, {"url": origin.clip2_url}])
    for added in (kept, removed):
        wait_for(lambda added=added: rt.engine.get(added.id).status == "finished", timeout=60,
                 message="the download")
    files = {added.id: rt.settings.download_path / rt.engine.get(added.id).filename
             for added in (kept, removed)}
    assert all(file.is_file() for file in files.values())
    assert rt.service.delete([kept.id]) == {kept.id: "ok"}  # no flag: the file stays
    assert rt.service.delete([removed.id], remove_file=True) == {removed.id: "ok"}
    assert files[kept.id].is_file() and not files[removed.id].exists()
    rt.stop()
    forbidding = start_runtime(YTP_REMOVE_FILES="false")
    [added] = forbidding.engine.add([{"url": origin.short_url}])
    wait_for(lambda: forbidding.engine.get(added.id).status == "finished", timeout=60,
             message="the download")
    file = forbidding.settings.download_path / forbidding.engine.get(added.id).filename
    assert forbidding.service.delete([added.id], remove_file=True) == {added.id: "ok"}
    assert file.is_file()


def test_the_websockets_queue_service_drives_the_engine(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    """What the websocket's two protocols call (QueueService), in process: an add, a pause
    of a known and an unknown id, and the Flasharr task of an item."""
    rt = start_runtime()
    [added] = rt.service.add([{"url": origin.clip_url, "auto_start": False}])
    assert rt.engine.get(added["id"]).url == origin.clip_url
    assert rt.service.pause([added["id"], "no-such-id"]) == {
        added["id"]: "ok", "no-such-id": "item not found"}
    task = rt.service.flasharr_task(rt.engine.get(added["id"]).to_dict())
    assert (task["id"], task["original_url"], task["state"]) == (
        added["id"], origin.clip_url, "paused")
