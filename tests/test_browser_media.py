"""Files of the download folder opened in a real browser tab (Chromium, headless) from the
real service: audio and video play in the browser's media page, and a page or an SVG a site
put there runs no script in the service's origin (tests/support/browser.py).

The header that keeps a site's page from running its script (``Content-Security-Policy:
sandbox``) also kept the media page from loading the video at all: a download opened from a
link showed a dead player. Only a browser shows that."""

from __future__ import annotations

import asyncio
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
