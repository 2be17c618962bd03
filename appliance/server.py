"""``appliance serve``: gunicorn started from Python, one gthread worker.

One worker, always: the download engine holds in-memory state and must be single. Scale is
threads and download processes inside that worker. The runtime (engine, websocket sidecar) is
built in the worker after fork and started in ``post_worker_init``; threads made before a fork
would not survive it.
"""

from __future__ import annotations

import logging
import resource
import signal
import threading
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.errors import AppImportError
from gunicorn.glogging import Logger

from . import heap
from .config import Settings
from .setting_fields import SettingsError
from .slots import IMAGE_FETCHES, OUTSIDE_WAITS
from .systemd import JournalFormatter, announce_stopping, stderr_is_journal

log = logging.getLogger(__name__)

# Threads for every request but the answers that last (files being sent, live streams, the
# player's segments, requests waiting on other servers): those have threads of their own on
# top, one for each place of their bounds (appliance/slots.py), so that however many of them
# run, these eight answer the rest.
REQUEST_THREADS = 8
# Seconds after the worker's start when its start-up has settled.
HEAP_SETTLE = 10.0
# A stop's seconds (gunicorn's graceful_timeout, within systemd's TimeoutStopSec of 45): the
# master kills the worker that long after its SIGTERM. The worker waits up to REQUESTS_DRAIN
# of them for its open answers (a file being sent to a slow client) before its exit stops the
# runtime (the downloads left resumable, the last events sent, the database closed) in the
# rest: waiting the whole time, the worker was killed as that stop began.
GRACEFUL_TIMEOUT = 30
REQUESTS_DRAIN = 15


def post_worker_init(worker: Any) -> None:
    # the worker's: the master never imports the runtime
    from .runtime import StartupFailure, failed_start

    runtime = worker.app.runtime
    try:
        runtime.start()
    except StartupFailure as exc:  # one line, as a failed load says it; the worker exits
        raise AppImportError(f"appliance: {exc}") from None
    except OSError as exc:  # a file it writes (the log): one line too
        raise AppImportError(f"appliance: {failed_start(exc, runtime.settings)}") from None
    worker.cfg.set("graceful_timeout", REQUESTS_DRAIN)  # the worker's own: the master keeps its
    heap.settle()  # before the first request: a full collection of start-up stops every thread
    # What start-up's threads allocated and freed in their first rounds (the file index's
    # scan, zeroconf's probes): given back once they have settled, what they built frozen.
    settled = threading.Timer(HEAP_SETTLE, heap.settle)
    settled.daemon = True
    settled.start()
    # gunicorn's SIGTERM only stops the accept loop and then waits (graceful_timeout) for open
    # requests; live streams (SSE) would hold that wait to the end. Tell them to finish first.
    graceful = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        runtime.stopping.set()
        if callable(graceful):
            graceful(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn sets it


def when_ready(arbiter: Any) -> None:
    """In the master: tell systemd STOPPING=1 when told to stop (TERM, INT, QUIT), before
    gunicorn's own handler queues the signal."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        queue_it = signal.getsignal(signum)

        def stopping(sig: int, frame: Any, queue_it: Any = queue_it) -> None:
            announce_stopping()
            if callable(queue_it):
                queue_it(sig, frame)

        signal.signal(signum, stopping)
    # gunicorn's own answers to these start a second worker beside the running one: a second
    # engine on the same queue, which recovered the downloads the first was still running
    # and started them again, then failed to listen on the websocket's port and stopped the
    # whole service ("Worker failed to boot"). One worker, always.
    arbiter.handle_hup = lambda: no_reload(arbiter)
    arbiter.handle_ttin = one_worker
    arbiter.handle_usr2 = no_upgrade


def no_reload(arbiter: Any) -> None:
    """SIGHUP (``systemctl reload``): there is nothing to read again -- the settings are
    read at start, those changed through the API apply at once, and the log file rotates by
    itself -- so the worker and its downloads go on."""
    arbiter.log.reopen_files()  # what gunicorn's reload does that is safe here
    log.warning("reload (SIGHUP) ignored: the service runs on, downloads and all; settings "
                "in the environment or config.yml take effect at a restart (`systemctl "
                "restart appliance`; running downloads resume)")


def one_worker() -> None:
    """SIGTTIN (one more worker) would be a second engine: refused."""
    log.warning("SIGTTIN ignored: the service runs one worker, always (its download engine "
                "must be single)")


def no_upgrade() -> None:
    """SIGUSR2 (gunicorn's binary upgrade) runs the service's command again beside the
    running one, which it leaves running: a second engine on the same queue. Refused."""
    log.warning("SIGUSR2 ignored: an upgrade in place would run a second service beside this "
                "one; restart it instead (`systemctl restart appliance`; running downloads "
                "resume)")


# Open files the service may hold. systemd gives a service a soft limit of 1,024 (kept low
# for programs that use select()), which the HTTP port's 1,000 connections alone nearly fill,
# before the websocket's, the database's, the downloads' pipes and the files being sent: at
# the limit every one of them fails. Nothing here waits with select() on what it opens.
OPEN_FILES = 65536


def raise_open_files() -> int:
    """The soft limit of open files raised to the hard one (at most OPEN_FILES); the soft
    limit after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pre_fork(arbiter: Any, worker: Any) -> None:
    """In the master, before it forks the worker: what it has imported lives as long as the
    process; out of the collector's sight, the worker's collections do not write to (and so
    copy) the pages it shares with the master."""
    heap.settle()  # the worker starts from the master's heap as it is now
    heap.one_arena()  # the worker's threads share its main heap


def worker_exit(server: Any, worker: Any) -> None:
    runtime = getattr(worker.app, "runtime", None)
    if runtime is not None:
        runtime.stop()


def request_threads(settings: Settings) -> int:
    """The HTTP worker's threads: REQUEST_THREADS and one for each answer that may last."""
    return (REQUEST_THREADS + settings.max_transfers + settings.max_streams
            + settings.player_max_ffmpeg + IMAGE_FETCHES + OUTSIDE_WAITS)


class JournalLogger(Logger):
    """gunicorn's logger; its lines carry journald priorities when stderr is the journal."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if stderr_is_journal():
            for handler in self.error_log.handlers:
                handler.setFormatter(JournalFormatter("gunicorn: %(message)s"))


class ApplianceServer(BaseApplication):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = None
        super().__init__()

    def load_config(self) -> None:
        settings = self.settings
        options = {
            "bind": [f"{settings.host}:{settings.port}"],
            "workers": 1,
            # gthread, with requests read whole in its poller before a thread gets them.
            "worker_class": "appliance.http_worker.RequestBufferingWorker",
            "threads": request_threads(settings),
            "preload_app": False,
            "max_requests": 0,
            # Long requests (URL info up to the extract timeout) must not get the worker killed.
            "timeout": max(60, int(settings.extract_info_timeout) + 30),
            "graceful_timeout": GRACEFUL_TIMEOUT,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "logger_class": JournalLogger,
            "loglevel": settings.log_level,
            "proc_name": "appliance",
            # gunicorn 27's control socket is one fixed path per user: two services (or tests)
            # would fight over it, and nothing here uses it.
            "control_socket_disable": True,
            # Who may say the client used https (X-Forwarded-Proto): the same proxies that may
            # name the client; unset, gunicorn's own default (loopback) stays.
            **({"forwarded_allow_ips": ",".join(settings.trusted_proxies)}
               if settings.trusted_proxies else {}),
            "when_ready": when_ready,
            "pre_fork": pre_fork,
            "post_worker_init": post_worker_init,
            "worker_exit": worker_exit,
            "worker_abort": lambda worker: worker_exit(None, worker),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from .api.app import create_app, mount
        from .runtime import Runtime, StartupFailure, failed_start

        try:
            self.runtime = Runtime(self.settings)
        # gunicorn prints an AppImportError's text alone and stops ("App failed to load"):
        # one line that says what is wrong, where any other error is a traceback.
        except StartupFailure as exc:
            raise AppImportError(f"appliance: {exc}") from None
        except OSError as exc:  # a file it writes (a first start's, on a full disk)
            raise AppImportError(f"appliance: {failed_start(exc, self.settings)}") from None
        except SettingsError as exc:  # a folder gone since `appliance serve` made it
            raise AppImportError(f"appliance: bad setting: {exc}") from None
        return mount(create_app(self.runtime), self.settings.base_path)
