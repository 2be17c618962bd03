"""What a chat target's answer can make the service read: Apprise's plugins read an answer whole
(requests without ``stream=True``), so a target answering 200 MiB, an endless body, a gzip
bomb or a head of 6 MB filled the memory, and one answering a byte a second held the send.
Each answer's head and body are read to at most 1 MiB (the body as decoded), the send ends by
its timeout, and each says why it failed.

The targets are HTTP servers on 127.0.0.1 in this process, reached through real Apprise
(``json://``, ``ntfy://``, ``gotify://``); memory is this process's (or the real service's
worker's), read from /proc.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import urllib3
from support.answers import HUGE, MIB, Target, memory, peak_rss_reset
from support.server import Server, wait_for
from support.webhooks import Receiver

from appliance.notify.answers import AnswerTooLarge, answers_bounded
from appliance.notify.messages import Message
from appliance.notify.senders import Outcome, send_apprise

MESSAGE = Message("Downloaded: Clip", "Downloaded: Clip (1.0 MB)", "success")
TOO_LARGE = Outcome(False, None, "The answer was larger than 1 MiB.", transient=False)


@pytest.fixture(name="sound")
def _sound() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(name="trickle")
def _trickle() -> Iterator[Target]:
    with Target("trickle") as target:
        yield target


def _grown(since: int, pid: int | str = "self") -> str | None:
    """What is wrong with process ``pid``'s peak memory, started again when it held
    ``since``: None when it grew by less than a few MiB."""
    grown = memory(pid)["VmHWM"] - since
    return None if grown < 8 * MIB else f"the memory grew by {grown / MIB:.0f} MiB"


@pytest.mark.parametrize("scheme", ["json", "ntfy", "gotify"])
@pytest.mark.parametrize("answer", ["sized", "endless", "bomb", "long_head"])
def test_an_answer_larger_than_a_mib_is_cut_there(answer: str, scheme: str,
                                                  sound: Receiver) -> None:
    # Apprise, its plugin and requests loaded, their pools started: what the cut send holds
    # is then only the answer.
    assert send_apprise(sound.url("/warm", scheme="json"), MESSAGE, 5) == Outcome(True)
    with Target(answer) as target:
        before = memory()["VmRSS"]
        peak_rss_reset()
        assert send_apprise(target.url(scheme), MESSAGE, 30) == TOO_LARGE
        assert _grown(before) is None
        assert target.asked == 1  # not sent again: the same request gets the same answer
        # The sender hung up, not only stopped reading (the target would go on sending). (A
        # bomb or a head is sent whole before: a few MB fit in the sockets' buffers.)
        assert answer in {"bomb", "long_head"} or target.hung_up.wait(10)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # verify=no
@pytest.mark.parametrize("answer", ["sized", "long_head", "trickle"])
def test_an_answer_over_tls_is_bounded_the_same(answer: str, tmp_path: Path) -> None:
    with Target(answer, tls=tmp_path) as target:
        outcome = send_apprise(target.url("jsons"), MESSAGE, 2)
    assert outcome == (Outcome(False, None, "The answer took longer than 2 s.", transient=True)
                       if answer == "trickle" else TOO_LARGE)


def test_an_answer_of_a_mib_is_read_and_one_byte_more_is_not() -> None:
    with Target("sized", size=MIB) as whole, Target("sized", size=MIB + 1) as more:
        assert send_apprise(whole.url(), MESSAGE, 30) == Outcome(True)
        assert send_apprise(more.url(), MESSAGE, 30) == TOO_LARGE


@pytest.mark.parametrize(("answer", "asked"), [
    ("sized", "read"), ("sized", "read1"), ("endless", "stream")])
def test_an_answer_asked_for_whole_is_cut_too(answer: str, asked: str) -> None:
    """What a plugin may ask of an answer: all of it at once (urllib3's ``read()``, all that
    has come with ``read1()``; a chunk of 16 MiB whole, as ``iter_content(None)`` asks). It
    gets the limit and a byte, then the error, as requests reads it."""
    with Target(answer) as target, urllib3.PoolManager() as pool, answers_bounded() as answers:
        response = pool.request("POST", f"http://127.0.0.1:{target.port}/",
                                preload_content=False)
        before = memory()["VmRSS"]
        peak_rss_reset()
        with pytest.raises(AnswerTooLarge):
            if asked == "stream":
                list(response.stream(None))
            else:
                read = getattr(response, asked)
                while read():  # (read1: what has come, each time)
                    pass
        assert _grown(before) is None
        assert answers.too_large


@pytest.mark.parametrize(("scheme", "answer"), [
    ("json", "trickle"), ("ntfy", "trickle"), ("gotify", "trickle"), ("json", "trickle_sized")])
def test_an_answer_that_trickles_ends_with_the_sends_time(scheme: str, answer: str) -> None:
    """A byte each quarter second, each within a socket read's timeout: the send ends when
    its time is up (then the connection is cut: its thread read on for as long as the answer
    came, one more at each retry, the service's exit waiting on them). Worth a retry, as a
    timeout. (The hang-up is seen at a byte's write: a byte a second was seconds more.)"""
    with Target(answer, every=0.25) as trickle:
        outcome = send_apprise(trickle.url(scheme), MESSAGE, 2)
        assert outcome == Outcome(False, None, "The answer took longer than 2 s.",
                                  transient=True)
        assert trickle.hung_up.wait(30), "the answer is still being read"


def test_other_sends_and_the_services_own_reads_go_on_meanwhile(
        sound: Receiver, trickle: Target) -> None:
    """The bound is the send's own: beside a send held by a trickle, another target is sent
    to, and a request of the service outside a send (another thread) reads 2 MiB whole."""
    held: list[Outcome] = []
    sending = threading.Thread(target=lambda: held.append(
        send_apprise(trickle.url(), MESSAGE, 10)), daemon=True)
    sending.start()
    wait_for(lambda: trickle.sending, message="the trickle to be answering")
    assert send_apprise(sound.url("/beside", scheme="json"), MESSAGE, 5) == Outcome(True)
    assert len(sound.to("/beside")) == 1
    with Target("sized", size=2 * MIB) as big:
        assert len(requests.post(f"http://127.0.0.1:{big.port}/", timeout=10).content) == 2 * MIB
    assert trickle.sending  # (all that while)
    sending.join(60)
    assert held == [Outcome(False, None, "The answer took longer than 10 s.", transient=True)]


def test_the_service_answers_beside_such_sends_and_says_how_each_failed(
        make_server: Callable[..., Server], sound: Receiver) -> None:
    """The real service: a target answering 200 MiB and one trickling are sent to by lanes of
    the worker, which neither grows by the answer nor stops answering meanwhile; each
    target's ``last_error`` says why it failed; the trickling one's notice is kept and tried
    again, as after a timeout, the other's given up; a sound target is sent to beside them."""
    server = make_server(YTP_NOTIFY_TIMEOUT="5", YTP_NOTIFY_RETRIES="1",
                         YTP_NOTIFY_RETRY_DELAY="0.05")
    worker = server.pids()[1]

    def add(name: str, url: str) -> int:
        made = server.post("/api/notifications", {"name": name, "on": ["paused"],
                                                  "request": {"url": url}})
        assert made.status_code == 200, made.text
        return int(made.json()["id"])

    def state(target_id: int) -> tuple[str | None, int]:
        got = server.get(f"/api/notifications/{target_id}").json()
        return got["last_error"], got["waiting"]

    def pause() -> None:
        assert server.post("/api/system/pause").status_code == 200
        assert server.post("/api/system/resume").status_code == 200

    add("sound", sound.url("/sound", scheme="json"))
    pause()  # the first chat send loads Apprise into the worker: its memory, not an answer's
    wait_for(lambda: sound.to("/sound"), message="the first message")
    with Target("sized", size=HUGE) as huge, Target("trickle") as trickle:
        huge_id, trickle_id = add("huge", huge.url()), add("trickles", trickle.url())
        before = memory(worker)["VmRSS"]
        peak_rss_reset(worker)
        pause()
        wait_for(lambda: trickle.sending, message="the trickle to be answering")
        assert server.get("/api/ping").status_code == 200
        assert state(trickle_id) == (None, 1)  # kept in the outbox while it is sent
        assert trickle.sending  # (the send was still running all that while)
        wait_for(lambda: len(sound.to("/sound")) == 2, message="the sound target's message")
        wait_for(lambda: state(huge_id)[0], message="the huge answer's send to end")
        assert state(huge_id) == ("The answer was larger than 1 MiB.", 0)
        assert huge.asked == 1
        assert _grown(before, worker) is None
        wait_for(lambda: state(trickle_id)[0], timeout=30, message="the trickle's sends to end")
        assert state(trickle_id) == ("The answer took longer than 5 s. (2 attempts)", 0)
        assert trickle.asked == 2
