"""A notification target on 127.0.0.1 (in the test process) that answers each request, on any
path, with the answer a test chose: what a hostile or broken service (or a URL someone set
through the API) can make a sender read."""

from __future__ import annotations

import functools
import ssl
import subprocess
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MIB = 2**20
HUGE = 200 * MIB

# The URL of each Apprise service the tests send through, on this target.
SCHEMES = {
    "json": "json://127.0.0.1:{port}/hook",
    "ntfy": "ntfy://127.0.0.1:{port}/topic",
    "gotify": "gotify://127.0.0.1:{port}/AbCdEfGhIjKlMnO",
    "jsons": "jsons://127.0.0.1:{port}/hook?verify=no",  # (a target made with ``tls``)
}


@functools.cache
def _bomb() -> bytes:
    """200 MiB of zeros gzipped (~200 KB), made a MiB at a time: the whole would be 200 MiB
    of this process's memory, which the tests measure."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format
    zeros = bytes(MIB)
    return b"".join(packer.compress(zeros) for _ in range(HUGE // MIB)) + packer.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    target: Target

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a sender that hung up mid-answer: what the tests want


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.server.target
        with target.lock:
            target.asked += 1
            target.sending += 1
        self.close_connection = True
        try:
            getattr(self, f"_{target.answer}")()
        except OSError:  # the sender hung up: the answer was not read to its end
            target.hung_up.set()
        finally:
            with target.lock:
                target.sending -= 1

    do_GET = do_PUT = do_POST

    def _head(self, **headers: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()

    def _sized(self) -> None:
        size = self.server.target.size
        self._head(Content_Length=str(size))
        self._spaces(size)

    def _spaces(self, size: int) -> None:
        mib = b" " * MIB
        for _ in range(size // MIB):
            self.wfile.write(mib)
        self.wfile.write(b" " * (size % MIB))

    def _endless(self) -> None:
        """Chunks of 16 MiB, never ending (until the sender hangs up or the target closes)."""
        self._head(Transfer_Encoding="chunked")
        while not self.server.target.closed.is_set():
            self.wfile.write(b"%x\r\n" % (16 * MIB))
            self._spaces(16 * MIB)
            self.wfile.write(b"\r\n")

    def _long_head(self) -> None:
        """A head of 95 lines of 64,000 bytes (http.client takes 100 of 64 KiB), written a
        line at a time (a head made whole would be this process's memory)."""
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Long: %s\r\n" % (b"a" * 64_000)
        for _ in range(95):
            self.wfile.write(line)
        self.wfile.write(b"Content-Length: 2\r\n\r\n{}")

    def _bomb(self) -> None:
        body = _bomb()
        self._head(Content_Encoding="gzip", Content_Length=str(len(body)))
        self.wfile.write(body)

    def _trickle(self) -> None:
        """A byte every ``every`` seconds, each well within any read's timeout, chunked (the
        sender knows no end to wait for)."""
        self._head(Transfer_Encoding="chunked")
        self._drip(b"1\r\n \r\n")

    def _trickle_sized(self) -> None:
        """As ``_trickle``, its length said (100,000 bytes): a sender waits for them all."""
        self._head(Content_Length="100000")
        self._drip(b" ")

    def _drip(self, piece: bytes) -> None:
        self.wfile.flush()
        while not self.server.target.closed.is_set():
            self.wfile.write(piece)
            self.wfile.flush()
            time.sleep(self.server.target.every)  # the trickle itself, not a wait


class Target:
    """Answers each request with ``answer``: ``sized`` (``size`` bytes, their length said),
    ``endless`` (chunks of 16 MiB, never ending), ``bomb`` (200 MiB of zeros gzipped: ~200 KB
    sent), ``long_head`` (a head of 6 MB), ``trickle`` (a byte every ``every`` seconds,
    chunked, never ending), ``trickle_sized`` (the same, 100,000 bytes said). ``asked``: the
    requests that came; ``sending``: the answers going out now; ``hung_up``: set when a sender
    hung up before an answer's end."""

    def __init__(self, answer: str, every: float = 1.0, size: int = HUGE,
                 tls: Path | None = None) -> None:
        """``tls``: a folder for a self-signed certificate, which the target then speaks TLS
        with (``jsons://…?verify=no`` takes it)."""
        self.answer, self.every, self.size = answer, every, size
        if answer == "bomb":
            _bomb()  # (made now: a second of CPU, not the first answer's)
        self.asked = self.sending = 0
        self.lock = threading.Lock()
        self.hung_up = threading.Event()
        self.closed = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.target = self
        if tls is not None:
            cert, key = tls / "target.pem", tls / "target.key"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "1", "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1"],
                           check=True, capture_output=True)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            # (the handshake in the request's thread, not the accepting loop's)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True,
                                                     do_handshake_on_connect=False)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, scheme: str = "json") -> str:
        return SCHEMES[scheme].format(port=self.port)

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def peak_rss_reset(pid: int | str = "self") -> None:
    """Starts process ``pid``'s peak resident memory (VmHWM) again from what it holds now."""
    with open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")


def memory(pid: int | str = "self") -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (its peak) of process ``pid``, in bytes."""
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM")}
