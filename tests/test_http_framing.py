"""The poller's view of when a request has fully arrived (appliance/http_framing.py), on any
split of the bytes into reads."""

from __future__ import annotations

import itertools

from gunicorn.config import Config
from hypothesis import given
from hypothesis import strategies as st

from appliance.http_framing import ReceivedBytes, RequestFraming

CFG = Config()
LIMIT = 1000
POST = b"POST /x HTTP/1.1\r\nHost: x\r\n"


def chunked(pieces: list[bytes], trailers: bytes = b"") -> bytes:
    body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces if p)
    return POST + b"Transfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n" + trailers + b"\r\n"


def feed_split(data: bytes, cuts: list[int], max_body: int = LIMIT
               ) -> tuple[RequestFraming, int]:
    """Feed ``data`` in reads cut at ``cuts``; the framing and how many bytes it took to say
    the request is whole (len(data) + 1 when it never did)."""
    framing = RequestFraming(CFG, ("127.0.0.1", 1), max_body)
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    for start, end in itertools.pairwise(bounds):
        if end > start and framing.feed(data[start:end]):
            return framing, end
    return framing, len(data) + 1


SPLITS = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)
PIECES = st.lists(st.binary(min_size=0, max_size=60), max_size=8)


@given(PIECES, SPLITS, st.sampled_from([b"", b"X-Sum: 1\r\n"]))
def test_a_chunked_body_is_whole_at_its_last_byte(pieces: list[bytes], cuts: list[int],
                                                  trailers: bytes) -> None:
    data = chunked(pieces, trailers)
    framing, taken = feed_split(data + b"GET /next HTTP/1.1\r\n", cuts)
    assert taken >= len(data) and not framing.cut
    assert framing.chunked is not None and framing.chunked.broken == ""
    assert framing.body_received == sum(map(len, pieces))
    # ... and not a byte before it
    assert feed_split(data[:-1], cuts)[1] == len(data)


@given(st.binary(min_size=1, max_size=LIMIT), SPLITS)
def test_a_length_body_is_whole_at_its_last_byte(body: bytes, cuts: list[int]) -> None:
    data = POST + b"Content-Length: %d\r\n\r\n" % len(body) + body
    assert feed_split(data, cuts)[1] >= len(data)
    assert feed_split(data[:-1], cuts)[1] == len(data)


def test_over_the_limit_goes_at_once_and_is_cut() -> None:
    head = POST + b"Content-Length: %d\r\n\r\n" % (LIMIT + 1)
    framing, taken = feed_split(head, [])
    assert framing.cut and taken == len(head)  # with the head, before any of the body
    data = chunked([b"a" * 600, b"b" * 600])
    framing, taken = feed_split(data, list(range(len(data))))
    assert framing.cut and taken < len(data) and framing.body_received == LIMIT + 1


def test_what_gunicorn_refuses_goes_at_once() -> None:
    for bad in (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
                POST + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\n"):
        framing, taken = feed_split(bad, [])
        assert taken == len(bad) and not framing.cut
    assert feed_split(POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", [])[0].chunked.broken


@given(SPLITS)
def test_chunk_data_not_ending_where_its_size_says_is_broken_there(cuts: list[int]) -> None:
    # the body, and the index of its first byte that breaks the framing
    for body, bad in ((b"3\r\nabcd\r\n0\r\n\r\n", 6), (b"3\r\nabc\rx0\r\n\r\n", 7),
                      (b"3\r\nabc\n\r0\r\n\r\n", 6)):
        data = POST + b"Transfer-Encoding: chunked\r\n\r\n" + body
        framing, taken = feed_split(data, cuts)
        assert framing.chunked is not None and "does not end with CRLF" in framing.chunked.broken
        assert len(data) - len(body) + bad < taken <= len(data)  # at that byte's read


def test_100_continue_is_noticed() -> None:
    framing, _ = feed_split(POST + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n", [])
    assert framing.expects_continue and not framing.done


@given(st.sampled_from([b"Content-Length: 5", b"content-length: 5", b"CONTENT-LENGTH:5",
                        b"Transfer-Encoding: chunked", b"transfer-encoding: chunked"]),
       st.sampled_from([b"GET", b"DELETE", b"POST"]))
def test_a_head_naming_a_body_in_any_case_waits_for_it(header: bytes, method: bytes) -> None:
    """A head is passed on without being parsed only when no word of a body's framing is in
    it: any spelling gunicorn reads as one keeps the poller waiting for that body."""
    head = method + b" /x HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n"
    framing, taken = feed_split(head, [])
    assert taken == len(head) + 1 and not framing.done  # the body has not come
    body = b"abcde" if b"ength" in header.lower() else b"5\r\nabcde\r\n0\r\n\r\n"
    assert feed_split(head + body, [])[1] == len(head + body)


def test_a_head_without_a_body_goes_at_once() -> None:
    head = b"GET /api/tasks?per_page=10 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"
    framing, taken = feed_split(head, list(range(len(head))))  # byte by byte
    assert taken == len(head) and framing.done and framing.body_bound == 0
    assert not framing.cut and not framing.expects_continue


def byte_by_byte(data: bytes) -> list[int]:
    return list(range(len(data)))


def test_trailers_end_on_any_split_and_are_bounded_however_they_trickle() -> None:
    body = chunked([b"abc"], b"X-Sum: 1\r\nX-Other: 2\r\n")
    framing, taken = feed_split(body, byte_by_byte(body))
    assert taken == len(body) and framing.chunked is not None and not framing.chunked.broken
    start = POST + b"Transfer-Encoding: chunked\r\n\r\n0\r\n"
    framing, _ = feed_split(start, [])
    assert framing.chunked is not None
    limit = framing.chunked.trailer_limit
    trickled = start + b"X: " + b"y" * (limit + 10_000)
    framing, taken = feed_split(trickled, list(range(len(start), len(trickled), 1000)))
    assert framing.chunked is not None
    assert framing.chunked.broken == f"the trailer section is longer than {limit} bytes"
    assert taken <= len(start) + limit + 1000  # at the read that passed the bound


def test_a_size_line_is_bounded_however_it_trickles_and_must_be_hexadecimal() -> None:
    long_line = POST + b"Transfer-Encoding: chunked\r\n\r\n" + b"0" * 20_000 + b"1\r\n"
    # (a max_body whose size lines may be longer than one line may)
    framing, taken = feed_split(long_line, list(range(0, len(long_line), 5)), 100 * LIMIT)
    assert framing.chunked is not None
    limit = framing.chunked.line_limit
    assert framing.chunked.broken == f"a chunk size line is longer than {limit} bytes"
    assert taken < len(long_line)
    # (and what Python's int() reads but gunicorn does not: its thread raised from the body)
    for size in (b"zz", b"-1", b"", b"3 3", b"0x3", b"+3", b"0_3", b" 3", b"3 ", b"3\t",
                 b"3\x0b", b"3\r", b" 3;a"):
        data = POST + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\nabc\r\n0\r\n\r\n"
        framing, _ = feed_split(data, [])
        assert framing.chunked is not None and framing.chunked.broken == (
            "a chunk size line is not a hexadecimal size ending with CRLF"), size
    for size in (b"3;name=a;b=c", b"3 \t;name=a", b'3;q="a \\" b";x', b"03;a = b"):
        data = POST + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\nabc\r\n0\r\n\r\n"
        framing, taken = feed_split(data, [])
        assert taken == len(data) and framing.chunked is not None, size
        assert not framing.chunked.broken and framing.body_received == 3, size


def test_a_chunk_extension_gunicorn_refuses_is_broken_framing() -> None:
    for extension in (b";a b", b";a\rb", b";\x01", b";", b';q="\r"', b";a=", b"; ;a"):
        data = (POST + b"Transfer-Encoding: chunked\r\n\r\n3" + extension
                + b"\r\nabc\r\n0\r\n\r\n")
        framing, _ = feed_split(data, [])
        assert framing.chunked is not None and framing.chunked.broken == (
            "a chunk extension is not name=value pairs of tokens or quoted text"), extension
        assert framing.body_received == 0


@given(SPLITS)
def test_trailers_gunicorn_refuses_are_broken_framing_on_any_split(cuts: list[int]) -> None:
    start = POST + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
    for trailers, broken in (
            (b"X-Sum 1\r\n\r\n", "a trailer field is malformed (InvalidHeader)"),
            (b"Host: y\r\n\r\n", "a trailer field is malformed (InvalidHeaderName)"),
            (b"X-Sum: 1\r\n folded\r\n\r\n", "a trailer field is malformed (ObsoleteFolding)"),
            (b"X-Sum: 1\nX-B: 2\r\n\r\n", "a trailer line ends with LF alone, not CRLF"),
            (b"\n", "a trailer line ends with LF alone, not CRLF")):
        framing, taken = feed_split(start + trailers + b"GET / HTTP/1.1\r\n\r\n", cuts)
        assert framing.chunked is not None and framing.chunked.broken == broken, trailers
        assert framing.done and framing.body_received == 3, trailers
    # A bare LF is seen at its own read, without waiting for a blank line that may never come.
    data = start + b"X-Sum: 1\n" + b"X-More: 2\r\n" * 10
    framing, taken = feed_split(data, byte_by_byte(data))
    assert framing.chunked is not None and framing.chunked.broken and taken == len(start) + 9
    # What follows the trailer section is the next request's, bare LF or not.
    framing, taken = feed_split(start + b"X-Sum: 1\r\n\r\nGET /\n\n", cuts)
    assert framing.chunked is not None and not framing.chunked.broken
    assert taken >= len(start) + 12 and framing.chunked.trailers is not None


@given(SPLITS)
def test_a_head_line_ending_with_lf_alone_goes_at_once_on_any_split(cuts: list[int]) -> None:
    """gunicorn refuses it at once; waited for, it was the head deadline's 408."""
    for head in (b"GET / HTTP/1.1\nHost: x\n\n", b"GET / HTTP/1.1\r\nHost: x\n",
                 b"\nGET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nX: a\nb\r\n\r\n"):
        framing, _ = feed_split(head + b"GET / HTTP/1.1\r\n", cuts)
        assert framing.done and framing.in_head and framing.chunked is None, head
        bare = next(i for i, byte in enumerate(head) if byte == 10 and head[i - 1:i] != b"\r")
        framing, taken = feed_split(head, byte_by_byte(head))
        assert taken == bare + 1, head  # at the read of the bare LF
    # A CRLF split between two reads is no bare LF.
    head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    framing, taken = feed_split(head, byte_by_byte(head))
    assert taken == len(head) and framing.done and not framing.in_head


def test_the_body_bound_and_the_bytes_received_are_what_the_worker_budgets_by() -> None:
    """The worker reserves memory by ``body_bound`` before a body comes, and gives a slow
    body time by ``body_received``: every byte counts, however the body is split."""
    body = b"x" * 300
    data = POST + b"Content-Length: 300\r\n\r\n" + body
    framing, _ = feed_split(data, list(range(len(data) - 300, len(data), 10)))
    assert framing.body_bound == 300 and framing.body_received == 300
    data = chunked([b"a" * 100, b"b" * 50])
    framing, _ = feed_split(data, byte_by_byte(data))
    assert framing.body_bound == 2 * LIMIT + 1 and framing.body_received == 150


def test_size_lines_may_take_no_more_bytes_than_the_data_may() -> None:
    """One-byte chunks behind long extensions (each line within its bound) made the poller
    keep thousands of bytes for each byte of data: 1.7 GB in 8 s from one connection."""
    start = POST + b"Transfer-Encoding: chunked\r\n\r\n"
    line = b"1;" + b"e" * 100 + b"\r\nx\r\n"
    data = start + line * 50
    framing, taken = feed_split(data, list(range(0, len(data), 7)))
    assert framing.chunked is not None
    assert framing.chunked.broken == f"its size lines and line ends take more than {LIMIT} bytes"
    assert framing.done and framing.body_received < 20
    # at the read that passed the bound
    assert taken <= len(start) + LIMIT + framing.body_received + 7
    # Small chunks are still a body while their framing fits (5 bytes for each byte here).
    data = start + b"1\r\nx\r\n" * (LIMIT // 5 - 1) + b"0\r\n\r\n"
    framing, taken = feed_split(data, byte_by_byte(data))
    assert taken == len(data) and framing.chunked is not None and not framing.chunked.broken
    assert framing.body_received == LIMIT // 5 - 1


def test_a_head_over_gunicorns_bound_goes_at_once() -> None:
    """Without its blank line, a head past the bound is handed over (gunicorn answers 431)
    instead of being waited for."""
    cfg = Config()
    for name, value in (("limit_request_line", 100), ("limit_request_fields", 1),
                        ("limit_request_field_size", 100)):
        cfg.set(name, value)
    framing = RequestFraming(cfg, ("127.0.0.1", 1), LIMIT)
    assert framing.head_limit == 100 + 2 + 1 * (100 + 2) + 4
    head = b"GET / HTTP/1.1\r\nX: " + b"y" * 300
    assert not framing.feed(head[:200])
    assert framing.feed(head[200:]) and framing.done


def test_a_head_with_every_word_of_a_body_still_waits_for_it() -> None:
    head = (POST + b"Content-Length: 5\r\nX-Transfer-Note: a\r\nX-Expect-Nothing: b\r\n\r\n")
    framing, taken = feed_split(head, [])
    assert taken == len(head) + 1 and not framing.done
    assert feed_split(head + b"abcde", [])[1] == len(head) + 5


def test_a_head_of_blank_lines_goes_at_once_and_stays_gone() -> None:
    framing = RequestFraming(CFG, ("127.0.0.1", 1), LIMIT)
    assert framing.feed(b"\r\n\r\n")
    assert framing.feed(b"GET / HTTP/1.1\r\n")  # once handed over, it stays handed over


def test_the_threads_source_is_what_the_poller_received_in_order() -> None:
    """A request thread's parser reads the poller's bytes, fed piece by piece, then nothing:
    running dry is the end of the input, never a wait on the socket."""
    received = ReceivedBytes()
    received.feed(b"GET / HT")
    assert received.read(4) == b"GET "
    received.feed(b"TP/1.1\r\n\r\n")
    assert received.read() == b"/ HTTP/1.1\r\n\r\n"
    assert received.read() == b""
