"""When has a request fully arrived? Decided on the bytes as they come, for the HTTP worker's
poller (``http_worker.py``), which holds a request until it is whole and only then hands it to a
request thread.

The head is parsed by gunicorn's own parser, so the poller and the thread agree on the body's
framing (Content-Length, chunked, neither). The body is followed without being decoded: a
byte count for a Content-Length, the chunk sizes for a chunked body. Whatever gunicorn will
refuse (a malformed or oversized head, broken chunk framing) ends the wait at once: the thread
then answers 400, reading nothing more (a head gunicorn refuses: as gunicorn says; broken chunk
framing: as ``ChunkedBodyEnd.broken`` says, before the API would read the body and hit it).
What gunicorn refuses the poller refuses too, by gunicorn's own rules where they are its to
apply (a chunk's extension, the trailer fields): a chunked body the poller took and gunicorn
refused in the thread was a 500 from inside the API.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from typing import Any

from gunicorn.http.body import CHUNK_EXT_RE, ChunkedReader, LengthReader
from gunicorn.http.message import Request
from gunicorn.http.unreader import IterUnreader, Unreader

CRLF = b"\r\n"
HEAD_END = b"\r\n\r\n"
# Words without which a head cannot frame a body (Content-Length, Transfer-Encoding, in any
# spelling gunicorn might map to them) nor ask for 100-continue (Expect).
BODY_WORDS = (b"content", b"transfer", b"expect")
# A chunk's size as gunicorn reads it: hexadecimal digits only (Python's int() also takes
# "0x5", "+5", "1_0" and spaces, which gunicorn refuses).
CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]+")


def bare_lf(buffer: bytes | bytearray, start: int, stop: int) -> bool:
    """Whether a line of ``buffer[start:stop]`` ends with LF alone. Every line of a head and
    of a trailer section ends with CRLF (RFC 9112 section 2.2), and gunicorn refuses a bare LF
    at once: its blank line, CRLF CRLF, may never come."""
    return buffer.count(b"\n", start, stop) != buffer.count(CRLF, max(0, start - 1), stop)


class ReceivedBytes(Unreader):
    """The parser's source in a request thread: the bytes the poller received, nothing else.
    Running dry is the end of the input, never a wait on the socket."""

    def chunk(self, size_hint: int | None = None) -> bytes:
        return b""

    def feed(self, data: bytes) -> None:
        self.buf.seek(0, os.SEEK_END)
        self.buf.write(data)


class ChunkedBodyEnd:
    """Finds the end of a chunked body (RFC 9112 section 7.1): size lines, the data they
    announce with its CRLF, the last chunk, the trailer section. Counts the data bytes.
    ``broken`` says what breaks the framing ("" while nothing does).

    The size lines and the CRLFs after data may take ``framing_limit`` bytes in all: the
    poller keeps every byte of a request until its thread takes it, and one-byte chunks behind
    8 KB extensions (each line within ``line_limit``) would otherwise make a body of max_body
    data bytes take 8,000 times that in memory, as fast as the client sends them."""

    def __init__(self, line_limit: int, trailer_limit: int, framing_limit: int,
                 read_trailers: Callable[[bytes], object]) -> None:
        self.line_limit = line_limit
        self.trailer_limit = trailer_limit
        self.framing_limit = framing_limit
        # gunicorn's reading of the trailer fields (it raises on what it refuses)
        self.read_trailers = read_trailers
        self.line = bytearray()  # the size line being received
        self.skip = 0  # bytes of the current chunk (and its CRLF) still to come
        self.data_left = 0  # of those, data bytes
        self.trailers: bytearray | None = None  # after the last chunk
        self.received = 0
        self.framing = 0  # bytes of size lines and CRLFs after data so far
        self.broken = ""

    def feed(self, data: bytes) -> bool:
        """True once the body has ended, or its framing is broken."""
        pos = 0
        while pos < len(data):
            if self.skip:
                step = min(self.skip, len(data) - pos)
                data_step = min(step, self.data_left)
                due = self.skip - self.data_left  # bytes of the CRLF after the data
                ending = data[pos + data_step:pos + step]
                if ending != CRLF[2 - due:2 - due + len(ending)]:
                    self.broken = "a chunk's data does not end with CRLF where its size says"
                    return True
                self.data_left -= data_step
                self.received += data_step
                self.framing += step - data_step
                self.skip -= step
                pos += step
            elif self.trailers is not None:
                # Searched from where the last read ended: a section trickled in byte by
                # byte and searched whole each time would cost the poller its square.
                searched = max(0, len(self.trailers) - 3)
                self.trailers += data[pos:]
                return self._trailers_end(searched)
            else:
                end = data.find(b"\n", pos)
                piece = data[pos:] if end < 0 else data[pos:end + 1]
                self.line += piece
                self.framing += len(piece)
                if len(self.line) > self.line_limit:
                    self.broken = f"a chunk size line is longer than {self.line_limit} bytes"
                    return True
                if self.framing > self.framing_limit:
                    self.broken = (f"its size lines and line ends take more than "
                                   f"{self.framing_limit} bytes")
                    return True
                if end < 0:
                    return False
                pos = end + 1
                if not self._chunk_size():
                    return True
        return False

    def _chunk_size(self) -> bool:
        line, self.line = bytes(self.line), bytearray()
        size, extended, extension = line[:-2].partition(b";")
        if extended:  # blanks may come before an extension (RFC 9112 section 7.1.1), only
            size = size.rstrip(b" \t")
        if not line.endswith(CRLF) or not CHUNK_SIZE.fullmatch(size):
            self.broken = "a chunk size line is not a hexadecimal size ending with CRLF"
            return False
        if extended and not CHUNK_EXT_RE.fullmatch(b";" + extension):
            self.broken = "a chunk extension is not name=value pairs of tokens or quoted text"
            return False
        chunk = int(size, 16)
        if chunk == 0:
            self.trailers = bytearray()
        else:
            self.data_left, self.skip = chunk, chunk + 2
        return True

    def _trailers_end(self, searched: int) -> bool:
        trailers = self.trailers
        assert trailers is not None
        if trailers.startswith(CRLF):
            return True
        end = trailers.find(HEAD_END, searched)
        if bare_lf(trailers, searched, len(trailers) if end < 0 else end + 4):
            self.broken = "a trailer line ends with LF alone, not CRLF"
            return True
        if end >= 0:
            try:
                self.read_trailers(bytes(trailers[:end]))
            except Exception as exc:  # what gunicorn raises from the body's read: a 500
                self.broken = f"a trailer field is malformed ({type(exc).__name__})"
            return True
        if len(trailers) > self.trailer_limit:
            self.broken = f"the trailer section is longer than {self.trailer_limit} bytes"
            return True
        return False


@functools.lru_cache(maxsize=4)
def head_limit(cfg: Any) -> int:
    """gunicorn's own bound on a head: the request line and Message.max_buffer_headers. Read
    once per configuration: a gunicorn setting takes microseconds to read, and the poller
    frames every request."""
    line = cfg.limit_request_line if cfg.limit_request_line > 0 else 8190
    fields = cfg.limit_request_fields if cfg.limit_request_fields > 0 else 32768
    field = cfg.limit_request_field_size if cfg.limit_request_field_size > 0 else 8190
    return line + 2 + fields * (field + 2) + 4


class RequestFraming:
    """Follows one request's bytes: its head up to the blank line, then its body.

    ``feed`` says True once the thread may have the request: it is all there, or the poller
    should stop waiting for it. ``cut`` then says the request goes without all of its body
    (over ``max_body``: the app answers 413 from the head or from ``max_body + 1`` bytes) and
    the connection must close after it, since where the next request starts is unknown.
    """

    def __init__(self, cfg: Any, peer: Any, max_body: int) -> None:
        self.cfg = cfg
        self.peer = peer
        self.max_body = max_body
        self.head_limit = head_limit(cfg)
        self.head = bytearray()
        self.in_head = True
        self.length_left = 0
        self.body_bound = 0  # the most body bytes this request may bring
        self.chunked: ChunkedBodyEnd | None = None
        self.body_received = 0
        self.expects_continue = False
        self.cut = False
        self.done = False

    @property
    def started(self) -> bool:
        return bool(self.head)

    def feed(self, data: bytes) -> bool:
        if self.done:
            return True
        if self.in_head:
            start = len(self.head)
            searched = max(0, start - 3)
            self.head += data
            end = self.head.find(HEAD_END, searched)
            if bare_lf(self.head, start, len(self.head) if end < 0 else end + 4):
                # gunicorn refuses it (400) at once; waited for, it was the head's deadline's
                # 408, ten seconds later, for a head that was all there
                self.done = True
                return True
            if end < 0:
                self.done = len(self.head) > self.head_limit
                return self.done
            data = bytes(self.head[end + 4:])
            del self.head[end + 4:]
            self.in_head = False
            if self._read_head():
                self.done = True
                return True
        self.done = self._feed_body(data)
        return self.done

    def _read_head(self) -> bool:
        """Learn the body's framing from the head; True when there is nothing to wait for."""
        head = bytes(self.head)
        lowered = head.lower()
        if not any(word in lowered for word in BODY_WORDS):
            # Most heads (a GET): no body to wait for. The thread parses the head as it
            # would anyway; parsing it here too cost the poller a fifth of its time per
            # request (bench/tasks_scale.py).
            return True
        try:
            request = Request(self.cfg, IterUnreader([head]), self.peer)
        except Exception:  # gunicorn refuses this head; the thread will say how (400)
            return True
        reader = request.body.reader
        if isinstance(reader, LengthReader):
            self.length_left = self.body_bound = reader.length
            if reader.length > self.max_body:
                self.cut = True
                return True
        elif isinstance(reader, ChunkedReader):
            # Its size lines may take as many bytes as its data may (chunks of a few bytes
            # each are refused, not kept); its trailers are bounded like a head.
            self.chunked = ChunkedBodyEnd(
                reader.limit_chunk_size_line, reader.limit_trailer_section, self.max_body,
                functools.partial(request.parse_headers, from_trailer=True))
            self.body_bound = 2 * self.max_body + 1
        self.expects_continue = request._expected_100_continue
        return not (self.length_left or self.chunked)

    def _feed_body(self, data: bytes) -> bool:
        if self.chunked is None:
            self.body_received += len(data)
            self.length_left -= len(data)
            return self.length_left <= 0
        ended = self.chunked.feed(data)
        self.body_received = self.chunked.received
        if self.body_received > self.max_body:
            self.cut = True
            return True
        return ended
