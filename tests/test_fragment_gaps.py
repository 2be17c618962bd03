"""A stream whose site does not send one of its fragments: yt-dlp (as on its command line)
skips it after its retries and the download "completes" with a gap in the video, said only on
a console nobody reads. The finished item now says so, with the site's answer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
import yt_dlp
from support.origin import MediaOrigin
from support.server import wait_for
from support.site import pages_handler, serving
from yt_dlp.downloader.hls import HlsFD
from yt_dlp.networking.exceptions import HTTPError

from appliance.engine.ffmpeg_words import SKIPPED_SEGMENT
from appliance.engine.fragment_gaps import FragmentsSkipped
from appliance.runtime import Runtime


def _playlist(segments: list[str]) -> bytes:
    body = "".join(f"#EXTINF:1.0,\n{url}\n" for url in segments)
    return (f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n"
            f"{body}#EXT-X-ENDLIST\n").encode()


@pytest.fixture
def site(origin: MediaOrigin) -> Iterator[str]:
    """``/gap.m3u8``: the origin's four segments, the third of which it does not have;
    ``/whole.m3u8``: the four it has."""
    seg = f"{origin.base_url}/hls/seg00{{}}.ts"
    pages = {"/gap.m3u8": _playlist([seg.format(0), seg.format(1), seg.format(9),
                                     seg.format(3)]),
             "/whole.m3u8": _playlist([seg.format(n) for n in range(4)])}

    with serving(pages_handler(pages, "application/vnd.apple.mpegurl")) as url:
        yield url


# What the item says, by yt-dlp's own downloader (which counts the fragments) and by ffmpeg.
SAID = {
    "": "The site did not send 1 of the video's 4 fragments (HTTP Error 404: Not Found): it "
        "has a gap where it was.",
    "--hls-prefer-ffmpeg": "The site did not send 1 of the video's fragments (HTTP error 404 "
                           "Not Found): it has a gap where it was.",
}


@pytest.mark.parametrize("cli", SAID)
def test_a_download_with_a_fragment_the_site_did_not_send_says_so(
        start_runtime: Callable[..., Runtime], site: str, cli: str,
        caplog: pytest.LogCaptureFixture) -> None:
    rt = start_runtime()
    caplog.set_level(logging.WARNING, logger="appliance.engine")
    gap, whole = rt.engine.add([{"url": f"{site}/gap.m3u8", "cli": cli},
                                {"url": f"{site}/whole.m3u8", "cli": cli}])
    ended = {i.id: wait_for(lambda i=i: (got := rt.engine.get(i.id)) and got.kind == "done"
                            and got, timeout=120, message="the downloads to end")
             for i in (gap, whole)}
    assert (ended[gap.id].status, ended[gap.id].msg) == ("finished", SAID[cli])
    assert (ended[whole.id].status, ended[whole.id].msg) == ("finished", "")
    assert [r.getMessage() for r in caplog.records if "gaps" in r.getMessage()] == [
        f"download finished with gaps: item={gap.id} url={site}/gap.m3u8: {SAID[cli]}"]


class _Heard:
    """yt-dlp's logger, its console heard as the download process hears it."""

    def __init__(self) -> None:
        self.fragments = FragmentsSkipped()
        self.debug = self.fragments.hear

    def info(self, msg: str) -> None:
        pass

    warning = error = info


def _refused(status: int, reason: str) -> HTTPError:
    class Answer:  # what HTTPError reads of a response
        url, headers = "http://127.0.0.1/seg.ts", {}

        def __init__(self) -> None:
            self.status, self.reason = status, reason

    return HTTPError(Answer())  # type: ignore[arg-type]


def _said(say: Callable[[HlsFD], None]) -> str | None:
    """What an item says of the fragments yt-dlp's own downloader reports as ``say`` does."""
    heard = _Heard()
    with yt_dlp.YoutubeDL({"logger": heard, "quiet": True}) as ydl:
        say(HlsFD(ydl, ydl.params))
    return heard.fragments.said()


def _two_streams_two_gaps(fd: HlsFD) -> None:
    fd.to_screen("[hlsnative] Total fragments: 4")  # (fragment.py's words) a merge's video
    fd.to_screen("[dashsegments] Total fragments: 6")  # and its audio
    for index in (3, 5):
        fd.report_retry(_refused(404, "Not Found"), 1, 10, index)
        fd.report_skip_fragment(index)


def _one_of_one(fd: HlsFD) -> None:
    fd.to_screen("[hlsnative] Total fragments: 1")
    fd.report_retry(_refused(503, "x" * 300), 1, 10, 0)
    fd.report_skip_fragment(0)


def _ffmpeg_s(fd: HlsFD) -> None:
    fd.to_screen(f"{SKIPPED_SEGMENT}HTTP error 404 Not Found")
    fd.to_screen(SKIPPED_SEGMENT)  # a segment it could not open without an answer


@pytest.mark.parametrize(("say", "said"), [
    (_two_streams_two_gaps, "The site did not send 2 of the video's 10 fragments (HTTP Error "
                            "404: Not Found): it has gaps where they were."),
    (_one_of_one, f"The site did not send 1 of the video's 1 fragments (HTTP Error 503: "
                  f"{'x' * 184}): it has a gap where it was."),
    (_ffmpeg_s, "The site did not send 2 of the video's fragments (HTTP error 404 Not Found): "
                "it has gaps where they were."),
    (lambda fd: fd.to_screen("[hlsnative] Total fragments: 4"), None),
], ids=["two-streams", "one-of-one", "ffmpeg", "whole"])
def test_the_fragments_yt_dlp_skipped_are_counted_from_its_own_words(
        say: Callable[[HlsFD], None], said: str | None) -> None:
    assert _said(say) == said
