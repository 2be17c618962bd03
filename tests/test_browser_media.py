"""Files of the download folder opened in a real browser tab (Chromium, headless) from the
real service: audio and video play in the browser's media page, a page or an SVG a site
put there runs no script in the service's origin (tests/support/browser.py), and the player's
subtitles of an old tool's file load as a text track.

The header that keeps a site's page from running its script (``Content-Security-Policy:
sandbox``) also kept the media page from loading the video at all: a download opened from a
link showed a dead player. Only a browser shows that."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.browser import Page, chromium
from support.origin import MediaOrigin
from support.server import Server

pytestmark = pytest.mark.e2e

PLAYING = ("(() => { const m = document.querySelector('video, audio');"
           " return m ? {time: m.currentTime, error: m.error && m.error.code} : null })()")
SCRIPT = "<script>document.title = 'ran'; document.body.dataset.ran = '1'</script>"


async def played(page: Page) -> Any:
    return await page.until(PLAYING, lambda m: m is not None and (m["error"] or m["time"] > 0.3),
                            what="the media page to play")


async def page_without_script(page: Page) -> Any:
    await page.until("document.readyState", lambda state: state == "complete")
    return await page.evaluate(
        "[document.title, !!document.querySelector('[data-ran]'),"
        " (document.getElementById('shown') || {}).textContent || null]")


def test_media_plays_in_a_tab_and_a_page_runs_no_script(
        make_server: Callable[..., Server], origin: MediaOrigin, tmp_path: Path) -> None:
    server = make_server()
    folder = server.download_path
    shutil.copyfile(origin.path_for(origin.clip_url), folder / "clip.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(folder / "clip.mp4"), "-vn", "-c:a",
                    "copy", str(folder / "clip.m4a")], check=True)
    (folder / "page.html").write_text(
        f"<html><head><title>page</title></head><body><p id=shown>shown</p>{SCRIPT}</body></html>")
    (folder / "Show.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><title>svg</title>'
        '<script>document.title = "ran"</script></svg>')
    base = f"http://127.0.0.1:{server.port}/api/download/"
    with chromium(tmp_path / "profile") as browser:
        for name in ("clip.mp4", "clip.m4a"):
            media = asyncio.run(browser.visit(base + name, played))
            assert media["error"] is None and media["time"] > 0.3, (name, media)
        # rendered (the text is there), its script not run
        assert asyncio.run(browser.visit(base + "page.html", page_without_script)) == [
            "page", False, "shown"]
        title = asyncio.run(browser.visit(base + "Show.svg", page_without_script))[0]
        assert title == "svg"


TRACK = ("(() => { const v = document.createElement('video');"
         " const t = document.createElement('track'); t.kind = 'subtitles'; t.default = true;"
         " t.src = SRC; v.appendChild(t); document.body.appendChild(v);"
         " t.track.mode = 'hidden'; window.shownTrack = t; return true })()")
CUES = ("(() => { const t = window.shownTrack;"
        " return t.readyState < 2 ? null : {state: t.readyState, cues:"
        " Array.from(t.track.cues || [], c => [c.startTime, c.endTime, c.text]),"
        " ran: document.title === 'ran'} })()")


def test_subtitles_of_old_tools_show_in_a_browser_track(
        make_server: Callable[..., Server], tmp_path: Path) -> None:
    """An srt in UTF-16 (Windows' "Unicode") beside a file whose name is Latin-1 bytes, as the
    player's master playlist names it (``caf%E9.en.srt``): Chromium loads it as a text track
    and shows its cue, accents and all; a cue's markup is text, never run."""
    server = make_server()
    folder = os.fsencode(server.download_path)
    srt = ("1\r\n00:00:01,000 --> 00:00:02,500\r\nCafé crème \u65e5\u672c\r\n\r\n"
           f"2\r\n00:00:03,000 --> 00:00:04,000\r\n{SCRIPT}\r\n")
    with open(folder + b"/caf\xe9.en.srt", "wb") as sub:
        sub.write(srt.encode("utf-16"))
    src = "/api/player/subtitle/caf%E9.en.srt.vtt"

    async def shown(page: Page) -> Any:
        await page.until("document.readyState", lambda state: state == "complete")
        await page.evaluate(TRACK.replace("SRC", repr(src)))
        return await page.until(CUES, lambda found: found is not None,
                                what="the track to load")

    with chromium(tmp_path / "profile") as browser:
        found = asyncio.run(browser.visit(f"http://127.0.0.1:{server.port}/api/ping", shown))
    assert found["state"] == 2, found  # loaded, not failed (3)
    assert found["cues"][0] == [1.0, 2.5, "Café crème \u65e5\u672c"]
    assert found["cues"][1][:2] == [3.0, 4.0] and not found["ran"]
