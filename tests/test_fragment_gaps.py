"""A stream whose site does not send one of its fragments: yt-dlp (as on its command line)
skips it after its retries and the download "completes" with a gap in the video, said only on
a console nobody reads. The finished item now says so, with the site's answer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from support.origin import MediaOrigin
from support.server import wait_for
from support.site import pages_handler, serving

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
