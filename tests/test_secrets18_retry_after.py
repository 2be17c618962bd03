"""A site that answers 429 Too Many Requests with a ``Retry-After`` says how long it asks to
wait: the item's error said only that the site limits requests (yt-dlp's message holds no
wait). Both forms (seconds, an HTTP date); a hostile value is bounded, one that is no wait
is left out."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator

import pytest
from support.guarded_site import GuardedSite
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.runtime import Runtime

LIMITED = ("The site is limiting requests from this box (HTTP 429 Too Many Requests): try "
           "again later, with fewer downloads from it at once "
           "(YTP_MAX_WORKERS_PER_EXTRACTOR).")


@pytest.fixture
def site(origin: MediaOrigin) -> Iterator[GuardedSite]:
    with GuardedSite(origin.media_dir / "hls", "c", "t") as guarded:
        yield guarded


@pytest.mark.parametrize(("header", "wait"), [
    (lambda: "150", " It asks to wait 2 min before the next try."),
    (lambda: email.utils.formatdate(time.time() + 3 * 3600 + 30, usegmt=True),
     " It asks to wait 3 h before the next try."),
    (lambda: "9" * 5000, " It asks to wait 168 h or more before the next try."),
    (lambda: "soon", ""),
    (lambda: email.utils.formatdate(time.time() - 60, usegmt=True), ""),
], ids=["seconds", "date", "huge", "not-a-wait", "past"])
def test_a_sites_429_says_how_long_it_asks_to_wait(
        start_runtime: Callable[..., Runtime], site: GuardedSite,
        header: Callable[[], str], wait: str) -> None:
    site.retry_after = header()
    rt = start_runtime(YTP_MAX_WORKERS="1")
    [item] = rt.engine.add([{"url": site.limited_url}])
    failed = wait_for(lambda: (i := rt.engine.get(item.id)) and i.kind == "done" and i,
                      timeout=120, message="the download to fail")
    assert failed.status == "error"
    assert failed.error.startswith(f"{LIMITED}{wait} ("), failed.error
    assert "[the site asks" not in failed.error  # yt-dlp's words in brackets, as they were
