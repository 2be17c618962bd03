"""The HTTP worker: gunicorn's gthread worker, with every request read in its poller.

gthread hands a connection to a request thread as soon as its first byte is there; the thread
then reads the rest with blocking reads that have no deadline. Eight clients that send ``GE``
and stop hold all eight threads, and the API stops answering (issue 9). Here the poller reads
each request whole, without blocking and against deadlines: the head, then the body up to
``max_body`` (Content-Length or chunked). A thread gets the request only once it is all there;
its parser reads those bytes from memory, never from the socket. One address may hold
``max_connections_per_address`` connections; new ones over that are closed at once. Answers
are written through ``http_pacing.PacedSocket``: a client that stops reading is cut off after
``send_timeout`` seconds, one that reads too slowly soon after.

The rest is gthread's own: keep-alive (an idle connection is closed after ``keepalive``
seconds), the graceful stop, ``max_requests``, the access log, error pages. One thing changes
hands: gthread's graceful close waits (up to 2 s) for the client's FIN in the poller itself, so
a client that never closes its side would stall every other connection; here the poller
lingers without blocking.

A stop gives the requests in flight their time, not the slow clients': a request still
arriving must keep coming at MIN_BODY_RATE, an answer being sent must be taken at the pacing's
MIN_SEND_RATE (each with STOP_KEEPALIVE_LINGER seconds of slack), or its connection is closed.
What is still being answered when gunicorn's graceful_timeout ends is cut off, so that the
threads sending it end: the interpreter's exit joins them, and one sending to a client that
read a byte a second held every stop to the master's kill (30 s).

HTTP/1.1 without TLS only, as ``appliance serve`` configures gunicorn (TLS ends at a reverse
proxy).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import selectors
import socket
import time
from concurrent.futures import Future, wait
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.http.parser import RequestParser
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from . import errors
from .http_framing import ReceivedBytes, RequestFraming
from .http_pacing import MIN_SEND_RATE, PacedSocket, ResponseAborted, SendTimeout
from .http_refusals import error_response, parse_refusal
from .peers import REFUSAL_LOG_INTERVAL, peer_address, peer_limit
from .request_threads import RequestThreads

log = logging.getLogger(__name__)

# A whole request head (request line and headers) must arrive within this many seconds of the
# connection opening, or of its first byte after a keep-alive wait. A real client sends its
# head in one packet; 10 s leaves room for a phone on a bad link.
HEAD_TIMEOUT = 10.0
# A body must start arriving within this many seconds of its head, and keep coming at
# MIN_BODY_RATE after that: a body of n bytes may take BODY_TIMEOUT + n / MIN_BODY_RATE
# seconds. 32 KiB/s is a 256 kbit/s uplink; a full 4 MiB body (the default max_body) may then
# take 138 s, a 10 kB JSON body 10 s.
BODY_TIMEOUT = 10.0
MIN_BODY_RATE = 32 * 1024
# gunicorn's graceful close: after the last response, wait this long for the client's FIN
# (reading at most LINGER_DRAIN bytes) so that unread request bytes do not turn the close into
# a reset that truncates that response (RFC 9112 section 9.6).
LINGER_TIME = 2.0
LINGER_DRAIN = 64 * 1024
# Request bodies in memory at once: at most this many full ones (max_body each). A body over
# SMALL_BODY (or chunked) reserves its bound (its Content-Length, or what a chunked body may
# take) until its request is done; one that does not fit waits unread, first come first
# served, its deadline running. Without it, 1,000 connections could hold a max_body each:
# 4 GiB at the default. A head that grows past SMALL_BODY reserves gunicorn's bound on a head
# (~800 KB) the same way: 400 connections holding a head just under that bound (6 addresses)
# took 280 MB; gunicorn allows 1,000 connections.
BODIES_IN_MEMORY = 16
# Heads and bodies up to this size (every JSON request of the API) are always read: a flood of
# big ones cannot hold them up, and they cost at most this much per connection.
SMALL_BODY = 64 * 1024
# Out of file descriptors, the listener stays readable; accepting again at once would spin.
ACCEPT_PAUSE = 0.5
RECV_SIZE = 64 * 1024
# gthread tells the master it is alive on every turn of its loop: a ``utime`` of its heartbeat
# file, which dirties an inode (on a disk-backed /tmp a journal write). The master only looks
# at it against gunicorn's ``timeout`` (60 s at least here), so once a second is plenty.
HEARTBEAT_INTERVAL = 1.0
# At the end of a stop, how long the threads whose answers were cut off may take to see it,
# before gthread closes the queue their ends are reported on.
CUT_WAIT = 1.0

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


TIMEOUT_RESPONSE = error_response(errors.AppError(
    f"The request did not arrive in time (its head within {HEAD_TIMEOUT:g} s, its body within "
    f"{BODY_TIMEOUT:g} s plus 1 s per {MIN_BODY_RATE // 1024} KiB); the connection is closed.",
    errors.REQUEST_TIMEOUT))
STOPPING_RESPONSE = error_response(errors.AppError(
    "The service is stopping, and the request was not arriving fast enough to be answered "
    f"first (at least {MIN_BODY_RATE // 1024} KiB/s); send it again once the service is back.",
    errors.UNAVAILABLE))


class BufferedConn(TConn):
    """A connection whose requests are received by the poller before a thread sees them."""

    def __init__(self, worker: RequestBufferingWorker, sock: socket.socket, client: Any,
                 server: Any) -> None:
        super().__init__(worker.cfg, sock, client, server)
        self.peer = peer_address(client)
        self.release = worker.peers.release
        self.max_body = worker.max_body
        self.keepalive = worker.keepalive
        self.buffer = ReceivedBytes()
        # Made here rather than in init() (in the thread) so that its source is the buffer.
        self.parser = RequestParser(self.cfg, sock, client)
        self.parser.unreader = self.buffer
        # gthread's handle() would first wait for a byte on the socket; a thread here only
        # ever gets a request that is all there.
        self.data_ready = True
        self.next_request(time.monotonic())
        self.body_started = 0.0
        self.linger_until: float | None = None
        self.drained = 0
        self.reserved = 0  # body bytes reserved in the worker's budget
        self.closed = False

    def next_request(self, now: float) -> None:
        self.framing = RequestFraming(self.cfg, self.client, self.max_body)
        self.head_deadline = now + HEAD_TIMEOUT

    def set_timeout(self) -> None:
        # gthread's reads cfg.keepalive, microseconds a time, after every request
        self.timeout = time.monotonic() + self.keepalive

    def recv(self) -> bytes | None:
        """What the socket has (b"": closed or reset; None: nothing yet)."""
        try:
            return self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""

    def receive(self, data: bytes, now: float) -> bool:
        """Take bytes from the socket; True once the request may go to a thread."""
        self.buffer.feed(data)
        in_head = self.framing.in_head
        ready = self.framing.feed(data)
        if in_head and not self.framing.in_head:
            self.body_started = now
            if self.framing.expects_continue and not ready:
                # Best effort: if it cannot be sent now, the client sends its body after
                # its own wait.
                with contextlib.suppress(OSError):
                    self.sock.send(CONTINUE)
        return ready

    def expired(self, now: float) -> bool:
        if self.linger_until is not None:
            return now > self.linger_until
        if self.framing.in_head:
            return now > self.head_deadline
        allowed = BODY_TIMEOUT + self.framing.body_received / MIN_BODY_RATE
        return now > self.body_started + allowed

    def close(self, graceful: bool = False) -> None:
        if not self.closed:
            self.closed = True
            self.release(self.peer)
        super().close(graceful)


class RequestBufferingWorker(ThreadWorker):
    """gthread with requests read whole in the poller, deadlines, and a per-address cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.app.settings
        self.max_body: int = settings.max_body
        self.keepalive: float = self.cfg.keepalive
        self.send_timeout: float = settings.send_timeout
        self.peers = peer_limit(settings, "HTTP")
        # Connections the poller reads a request from, or lingers on before closing.
        self.waiting: set[BufferedConn] = set()
        # Of those, the ones waiting for memory for their body, in order (an ordered set).
        self.paused: dict[BufferedConn, None] = {}
        # Connections a request thread has, with its future.
        self.answering: dict[BufferedConn, Future] = {}
        self.body_budget = BODIES_IN_MEMORY * self.max_body
        self.reserved = 0
        self.budget_warned = -math.inf
        self.cap_warned = -math.inf
        self.accept_paused_until = 0.0
        self.next_heartbeat = 0.0

    def get_thread_pool(self) -> RequestThreads:
        return RequestThreads(self.cfg.threads)

    def init_process(self) -> None:
        if self.cfg.is_ssl:
            raise RuntimeError("RequestBufferingWorker serves plain HTTP/1.1 only")
        super().init_process()

    def notify(self) -> None:
        now = time.monotonic()
        if now >= self.next_heartbeat:
            self.next_heartbeat = now + HEARTBEAT_INTERVAL
            super().notify()

    # --- accepting ----------------------------------------------------------------------

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and time.monotonic() >= self.accept_paused_until)

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                log.warning("cannot accept connections: %s; pausing %g s", exc.strerror,
                            ACCEPT_PAUSE)
                self.accept_paused_until = time.monotonic() + ACCEPT_PAUSE
                self.set_accept_enabled(False)
            elif exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        if not self.peers.admit(peer_address(client)):
            util.close(sock)
            return
        self.nr_conns += 1
        conn = BufferedConn(self, sock, client, listener.getsockname())
        self.read_request(conn)
        if self.nr_conns >= self.worker_connections:
            self.make_room(conn)

    def make_room(self, newest: BufferedConn) -> None:
        """At gunicorn's cap on connections (1,000) gthread stops accepting until one closes:
        1,000 connections that send nothing, from 16 addresses, kept every new client waiting
        up to HEAD_TIMEOUT, again and again. Here the idle connection that has waited longest
        goes instead: one kept alive between requests, else one whose head has not all come
        (a body being uploaded, a request in a thread and a lingering close stay; with none
        of those, gthread stops accepting as it would)."""
        now = time.monotonic()
        if now - self.cap_warned >= REFUSAL_LOG_INTERVAL:
            self.cap_warned = now
            log.warning("%d connections open, the most the HTTP worker takes: closing the idle "
                        "ones that waited longest", self.nr_conns)
        if self.keepalived_conns:
            conn = self.keepalived_conns.popleft()
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.poller.unregister(conn.sock)
            self.nr_conns -= 1
            conn.close()
            return
        heads = [c for c in self.waiting
                 if c.linger_until is None and c.framing.in_head and c is not newest]
        if heads:
            self.drop(min(heads, key=lambda c: c.head_deadline))

    # --- reading a request in the poller ------------------------------------------------

    def read_request(self, conn: BufferedConn, received: bytes = b"") -> None:
        """Wait in the poller for the rest of the request (``received`` is its start)."""
        if received and self.take(conn, received):
            self.enqueue_req(conn)
            return
        conn.sock.setblocking(False)
        self.waiting.add(conn)
        if conn not in self.paused:
            self.poller.register(conn.sock, selectors.EVENT_READ,
                                 partial(self.on_request_bytes, conn))

    def on_request_bytes(self, conn: BufferedConn, _sock: socket.socket) -> None:
        data = conn.recv()
        if data is None:
            return
        if not data:  # gone (or reset) before its request was whole
            self.drop(conn)
            return
        if self.take(conn, data):
            self.stop_waiting(conn)
            self.enqueue_req(conn)
        elif conn in self.paused:
            self.poller.unregister(conn.sock)

    def take(self, conn: BufferedConn, data: bytes) -> bool:
        """``conn.receive``; a big head or body being received gets its memory reserved, or
        waits."""
        ready = conn.receive(data, time.monotonic())
        if not (ready or conn in self.paused) and not self.reserve(conn):
            self.paused[conn] = None
            self.warn_memory()
        return ready

    def reserve(self, conn: BufferedConn) -> bool:
        """Reserve what ``conn``'s request may still need in memory; False: it does not fit."""
        framing = conn.framing
        if framing.in_head:
            need = framing.head_limit if len(framing.head) > SMALL_BODY else 0
        else:
            need = framing.body_bound if framing.body_bound > SMALL_BODY else 0
        more = need - conn.reserved
        if more <= 0:
            return True
        # (one request alone may pass the budget: a big head with a small max_body)
        if self.reserved and self.reserved + more > self.body_budget:
            return False
        conn.reserved = need
        self.reserved += more
        return True

    def give_back(self, conn: BufferedConn) -> None:
        """``conn``'s body is done with: its memory goes to the bodies waiting for it."""
        self.reserved -= conn.reserved
        conn.reserved = 0
        self.paused.pop(conn, None)
        while self.paused and self.reserve(waiting := next(iter(self.paused))):
            del self.paused[waiting]
            self.poller.register(waiting.sock, selectors.EVENT_READ,
                                 partial(self.on_request_bytes, waiting))

    def warn_memory(self) -> None:
        now = time.monotonic()
        if now - self.budget_warned >= REFUSAL_LOG_INTERVAL:
            self.budget_warned = now
            log.warning("requests being received hold %d MiB, the most kept in memory "
                        "(%d x YTP_MAX_BODY); others wait", self.reserved >> 20,
                        BODIES_IN_MEMORY)

    def on_client_socket_readable(self, conn: BufferedConn, client: socket.socket) -> None:
        """A kept-alive connection has bytes of its next request: read at once, a request
        that came in one packet (most do) goes to a thread on this turn of the loop."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        conn.next_request(time.monotonic())
        received = conn.recv()
        if received == b"":  # closed (or reset) instead
            self.drop(conn)
            return
        self.read_request(conn, received or b"")

    def murder_pending(self) -> None:
        """Close what passed its deadline (gthread's own pending list stays empty here: its
        handle() never sends a connection back, as ``data_ready`` is always set)."""
        now = time.monotonic()
        answer = TIMEOUT_RESPONSE if self.alive else STOPPING_RESPONSE
        for conn in [c for c in self.waiting if c.expired(now)]:
            if conn.linger_until is None:
                log.debug("closing %s: request not received in time", conn.peer)
                if conn.framing.started:
                    with contextlib.suppress(OSError, KeyError, ValueError):
                        conn.sock.send(answer)
            self.drop(conn)
        if not self.alive:
            self.hurry(now)

    def hurry(self, now: float) -> None:
        """Stopping (each turn of the loop): a connection still without a whole head goes
        soon, as gthread's kept-alive ones do (a real client sends its head in one packet); a
        body must keep coming at MIN_BODY_RATE from now on, and an answer be taken at
        MIN_SEND_RATE, each with STOP_KEEPALIVE_LINGER of slack (a body's deadline, taken
        again at each turn, is the nearest: a pause longer than the slack ends it)."""
        stop_by = now + STOP_KEEPALIVE_LINGER
        for conn in self.waiting:
            if conn.linger_until is not None:
                continue
            if conn.framing.in_head:
                conn.head_deadline = min(conn.head_deadline, stop_by)
            else:  # its deadline: stop_by, and 1 s more for each MIN_BODY_RATE that comes
                conn.body_started = min(conn.body_started, stop_by - BODY_TIMEOUT
                                        - conn.framing.body_received / MIN_BODY_RATE)
        for conn in self.answering:
            sock = conn.sock
            if isinstance(sock, PacedSocket) and sock.lagging(now, STOP_KEEPALIVE_LINGER):
                log.info("closing %s: the service is stopping, and it takes its answer at "
                         "less than %d KiB/s", conn.peer, MIN_SEND_RATE // 1024)
                sock.cut_off()

    def murder_keepalived(self, force: bool = False) -> None:
        super().murder_keepalived(force)
        if force and self.answering:  # (gthread's cleanup at the end of a stop, only)
            self.cut_answers()

    def cut_answers(self) -> None:
        """Cut off what is still being answered when the stop's time is up; the threads that
        were sending it end (a thread the application holds ends when it is done)."""
        log.warning("stopping: answers not finished in the %g s a stop gives them, cut off: %d",
                    self.cfg.graceful_timeout, len(self.answering))
        for conn in self.answering:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        wait(self.answering.values(), timeout=CUT_WAIT)

    def stop_waiting(self, conn: BufferedConn) -> None:
        self.waiting.discard(conn)
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)

    def drop(self, conn: BufferedConn) -> None:
        self.stop_waiting(conn)
        self.give_back(conn)
        self.nr_conns -= 1
        conn.close()

    # --- the request thread -------------------------------------------------------------

    def enqueue_req(self, conn: BufferedConn) -> None:
        """gthread's, with the thread's future kept until its end is handled."""
        fs = self.tpool.submit(self.handle, conn)
        self.answering[conn] = fs
        fs.add_done_callback(
            lambda done: self.method_queue.defer(self.finish_request, conn, done))

    def _keepalive_after(self, conn: BufferedConn, keepalive: bool) -> bool:
        # A request sent on without all its body: where the next one starts is unknown.
        return not conn.framing.cut and super()._keepalive_after(conn, keepalive)

    def handle_error(self, req: Any, client: socket.socket, addr: Any,
                     exc: BaseException) -> None:
        """A request gunicorn's parser refused gets the API's JSON error, not its HTML page."""
        refusal = parse_refusal(exc)
        if refusal is None:
            super().handle_error(req, client, addr, exc)
            return
        self.refuse(client, addr, refusal)

    def refuse(self, client: socket.socket, addr: Any, refusal: errors.AppError) -> None:
        peer = addr[0] if isinstance(addr, tuple) and addr else "a local socket"
        # Not announced: anyone who can connect would choose the text of a notification.
        log.warning("refused a request from %s: %s", peer, refusal.message,
                    extra={"announce": False})
        with contextlib.suppress(OSError):
            util.write_nonblock(client, error_response(refusal))

    def handle_request(self, req: Any, conn: BufferedConn) -> bool:
        # The poller answered Expect: 100-continue when it waited for the body, and not for a
        # body it would not take; gunicorn must not say it (again) now.
        req._expected_100_continue = False
        chunked = conn.framing.chunked
        if chunked is not None and chunked.broken:
            # gunicorn would raise it from the body's read, inside the API: a 500.
            self.refuse(conn.sock, conn.client, errors.invalid(
                f"The request could not be read: its chunked body is malformed "
                f"({chunked.broken})."))
            return False
        paced = PacedSocket(conn.sock, self.send_timeout)
        conn.sock = paced  # type: ignore[assignment]  # the response writes through it
        try:
            return super().handle_request(req, conn)
        except SendTimeout as exc:
            log.info("closing %s: the answer to %s %s was not taken in time (%s)", conn.peer,
                     req.method, req.path, exc)
            return False
        except ResponseAborted as exc:
            log.warning("closing %s: the answer to %s %s broke off: %s", conn.peer, req.method,
                        req.path, exc)
            return False
        finally:
            conn.sock = paced.release()

    def finish_request(self, conn: BufferedConn, fs: Future) -> None:
        self.answering.pop(conn, None)
        self.give_back(conn)
        if fs.cancelled() or fs.exception() is not None or not fs.result():
            self.linger(conn)
            return
        pipelined = conn.buffer.take_buffered()
        if pipelined:  # gthread would hand these to a thread at once
            conn.next_request(time.monotonic())
            self.read_request(conn, pipelined)
            return
        super().finish_request(conn, fs)  # keep-alive: gthread's idle wait

    def linger(self, conn: BufferedConn) -> None:
        """Close after the client's FIN, LINGER_TIME at most, without blocking the poller."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
        except OSError:
            self.nr_conns -= 1
            conn.close()
            return
        conn.linger_until = time.monotonic() + LINGER_TIME
        self.waiting.add(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_linger_bytes, conn))

    def on_linger_bytes(self, conn: BufferedConn, _sock: socket.socket) -> None:
        data = conn.recv()
        if data is None:
            return
        conn.drained += len(data)
        if not data or conn.drained >= LINGER_DRAIN:
            self.drop(conn)
