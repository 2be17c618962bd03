"""What a target's answer may cost an Apprise send: at most ``ANSWER_LIMIT`` bytes of each
answer's head and of its body read, the body as decoded (a gzip answer of 1 MiB unpacks to
1 GiB); and whether an answer had begun when the send's time was up (its body was then what
took long).

Apprise's plugins call requests without ``stream=True``, so requests reads an answer whole,
of any length, into memory before the plugin looks at its status; and they take no session or
hook of ours. Within ``answers_bounded``, an audit hook on http.client's ``send`` (each
request urllib3 makes goes through it, with its connection) makes that connection one whose
answers count what is read of them and refuse to read on past the limit. Only connections
sent on within (a context variable: Apprise sends from its own threads with a copy of the
caller's context) change, one object at a time: the service's other requests, in other
threads or after the send, read as before.

The head (status line and headers) is bounded the same way, apart from the body.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import http.client
import sys
from collections.abc import Iterator
from typing import Any

from urllib3.exceptions import ProtocolError
from urllib3.response import HTTPResponse

ANSWER_LIMIT = 2**20  # bytes: a chat service's JSON answer is a few hundred


@dataclasses.dataclass
class Answers:
    """What the answers of one send did; ``limit``: the bytes an answer's head may have, and
    its body."""

    limit: int = ANSWER_LIMIT
    begun: bool = False  # an answer's status and headers came
    too_large: bool = False  # one was larger than ``limit``, and was cut


class AnswerTooLarge(ProtocolError):
    """An answer went past the limit: a ProtocolError, which requests reports as a broken
    answer (ChunkedEncodingError), a RequestException each plugin handles as a failure."""


_answers: contextvars.ContextVar[Answers | None] = contextvars.ContextVar(
    "answers_bounded", default=None)


@contextlib.contextmanager
def answers_bounded(limit: int = ANSWER_LIMIT) -> Iterator[Answers]:
    """Within (and in work handed to other threads with this context): each answer to a
    request sent is read to at most ``limit`` bytes; the yielded ``Answers`` says what they
    did."""
    answers = Answers(limit)
    token = _answers.set(answers)
    try:
        yield answers
    finally:
        _answers.reset(token)


@dataclasses.dataclass
class _Meter:
    """What is read of one answer's head, or of its body: at most the limit and a byte (which
    tells an answer larger than the limit from one of the limit's size)."""

    answers: Answers
    taken: int = 0

    def asked(self, amt: int | None) -> int:
        # All of it (None: urllib3's read(), read1() and drain, iter_content(None)) is what
        # is left.
        left = self.answers.limit - self.taken + 1
        return left if amt is None or amt < 0 or amt > left else amt

    def counted(self, data: bytes, what: str) -> bytes:
        self.taken += len(data)
        if self.taken > self.answers.limit:
            self.answers.too_large = True
            raise AnswerTooLarge(f"{what} was larger than {self.answers.limit} bytes")
        return data


class _Counted(HTTPResponse):
    """An answer whose body is read (as decoded) through a meter."""

    meter: _Meter

    def read(self, amt: int | None = None, decode_content: bool | None = None,
             cache_content: bool = False) -> bytes:
        return self._counted(super().read(self.meter.asked(amt), decode_content,
                                          cache_content))

    def read1(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        return self._counted(super().read1(self.meter.asked(amt), decode_content))

    def read_chunked(self, amt: int | None = None,
                     decode_content: bool | None = None) -> Iterator[bytes]:
        for part in super().read_chunked(self.meter.asked(amt), decode_content):
            yield self._counted(part)

    def _counted(self, data: bytes) -> bytes:
        try:
            return self.meter.counted(data, "the answer")
        except AnswerTooLarge:
            self.close()  # (the connection too: the target would go on sending)
            raise


class _HeadLines:
    """What http.client reads an answer's status line and headers through (lines only):
    each line through a meter. (Left to http.client, a head may be 100 lines of 64 KiB: the
    service grew by 47 MiB reading one of 6 MB, parsed and copied.)"""

    def __init__(self, fp: Any, answers: Answers) -> None:
        self.fp, self.meter = fp, _Meter(answers)

    def readline(self, size: int = -1) -> bytes:
        return self.meter.counted(self.fp.readline(self.meter.asked(size)), "the answer's head")


class _Headed(http.client.HTTPResponse):
    """An answer whose head is read through ``_HeadLines`` within ``answers_bounded``."""

    def begin(self) -> None:
        answers = _answers.get()
        if answers is None:
            super().begin()
            return
        fp = self.fp
        self.fp = _HeadLines(fp, answers)
        try:
            super().begin()
        finally:
            self.fp = fp


class _Answering:
    """A connection whose answers, received within ``answers_bounded``, are counted."""

    response_class = _Headed

    def getresponse(self) -> Any:
        response = super().getresponse()  # type: ignore[misc]
        answers = _answers.get()
        # (http.client's own answers, with no urllib3 above, are left: no plugin reads one)
        if answers is not None and type(response) is HTTPResponse:
            answers.begun = True
            response.__class__ = _Counted
            response.meter = _Meter(answers)
        return response


@functools.cache
def _answering(cls: type) -> type:
    return type(f"Answering{cls.__name__}", (_Answering, cls), {})


def _send_audit(event: str, args: tuple[Any, ...]) -> None:  # pragma: no mutate block
    # Called for every audited event of the process: it looks no further than a request.
    if event == "http.client.send" and _answers.get() is not None:
        connection = args[0]
        if not isinstance(connection, _Answering):
            connection.__class__ = _answering(type(connection))


# An audit hook stays for the process's life: added once, with this module (imported with
# the first Apprise send; an import runs once).
sys.addaudithook(_send_audit)
