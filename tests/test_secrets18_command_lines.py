"""A person's secrets for a site (an item's or a preset's cookies, an ``Authorization`` header
it adds) never reach a command line, which every user of the box reads in
``/proc/PID/cmdline``. yt-dlp handed a stream to ffmpeg with ``-cookies "session=…"`` and
``-headers "Authorization: Bearer …"`` among its arguments; now a download that carries
secrets gets yt-dlp's own downloader, and ffmpeg sees only the files it fixes up."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
from support.command_lines import CommandLines, command_lines
from support.guarded_site import GuardedSite
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine import command_line_secrets
from appliance.engine.ytdlp_tuning import parsed_options
from appliance.runtime import Runtime

COOKIE = "c00kie-0f-the-person-4e1d"
TOKEN = "t0ken-0f-the-person-93ab"


def _container(path: str) -> str:
    said = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=format_name",
                           "-of", "csv=p=0", path], capture_output=True, text=True, check=False)
    return said.stdout.strip()


def test_a_stream_with_a_persons_cookies_and_header_keeps_them_off_every_command_line(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    with GuardedSite(origin.media_dir / "hls", COOKIE, TOKEN) as site, CommandLines() as seen:
        rt = start_runtime(YTP_MAX_WORKERS="1")
        # --hls-prefer-ffmpeg: the stream goes to ffmpeg, as a live one, DASH's or a site's
        # own choice does
        [item] = rt.engine.add([{
            "url": site.hls_url, "cookies": site.cookies_file(),
            "cli": f'--hls-prefer-ffmpeg --add-header "Authorization: Bearer {TOKEN}"'}])
        wait_for(lambda: site.segment_asked.is_set() or rt.engine.get(item.id).kind == "done",
                 timeout=120, message="the stream's first segment to be asked for")
        held = command_lines()  # what downloads the stream is at work, held by the site
        site.released.set()
        done = wait_for(lambda: (i := rt.engine.get(item.id)) and i.kind == "done" and i,
                        timeout=120, message="the download to end")
    told = [line for line in [*held.values(), *seen.seen] if COOKIE in line or TOKEN in line]
    assert told == [], told
    assert (done.status, done.error, site.refused) == ("finished", "", [])
    # the stream (MPEG-TS) made an mp4: ffmpeg fixed it up, from the file on the disk
    assert "mp4" in _container(str(rt.settings.download_path / done.filename))


def test_what_only_ffmpeg_downloads_is_refused_rather_than_handed_the_secrets(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    site = GuardedSite(origin.media_dir / "hls", COOKIE, TOKEN)
    site.released.set()
    with site, CommandLines() as seen:
        rt = start_runtime(YTP_MAX_WORKERS="1")
        # a section of a stream: yt-dlp has no downloader of its own for it
        [item] = rt.engine.add([{
            "url": site.hls_url, "cookies": site.cookies_file(),
            "cli": f'--download-sections "*0-2" --add-header "Authorization: Bearer {TOKEN}"'}])
        failed = wait_for(lambda: (i := rt.engine.get(item.id)) and i.kind == "done" and i,
                          timeout=120, message="the download to end")
    assert [line for line in seen.seen if COOKIE in line or TOKEN in line] == []
    assert (failed.status, failed.error) == ("error", (
        "Refused to start ffmpeg with the item's cookies or credentials on its command line, "
        "where every user of this box could read them: yt-dlp downloads this stream only "
        "through ffmpeg (a live stream, or --download-sections). Download it without cookies "
        "or credentials, or once it is no longer live.")), failed


@pytest.mark.parametrize(("url", "args", "secret"), [
    ("https://me:pa55word@site.example/v", [], ["pa55word"]),
    ("https://site.example/v?id=7&token=a%2Fbcdefgh", [], ["a%2Fbcdefgh", "a/bcdefgh"]),
    ("https://0a1b2c3d4e5f6a7b8c9d@site.example/v", [], ["0a1b2c3d4e5f6a7b8c9d"]),
    ("https://site.example/v", ["--add-header", "X-Api-Key: k3y-value"], ["k3y-value"]),
    ("https://site.example/v", ["--add-header", "Authorization: Basic dXNlcg=="],
     ["Basic dXNlcg=="]),
    ("https://site.example/v", ["--username", "me", "--password", "hunter22"], ["hunter22"]),
])
def test_a_persons_secrets_are_found_in_the_url_the_headers_and_the_login(
        url: str, args: list[str], secret: list[str]) -> None:
    secrets = command_line_secrets.of_job(url, parsed_options(tuple(args)))
    assert secrets and set(secret) <= secrets.values, secrets
    assert secrets.refusal("ffmpeg", ["ffmpeg", "-i", f"https://cdn.example/x{secret[0]}y"])
    assert secrets.refusal("ffmpeg", ["ffmpeg", "-headers", f"X-Key: {secret[0]}\r\n"])
    assert secrets.refusal("ffmpeg", ["ffmpeg", "-cookies", "a=1", "-i", "file:x"])
    assert secrets.refusal("ffmpeg", ["ffmpeg", "-i", "https://me:pw@cdn.example/x.m3u8"])
    # a fix-up's files and titles are the site's texts, which may hold a value by chance
    assert secrets.refusal("ffmpeg", [
        "ffmpeg", "-i", f"file:{secret[0]}.ts", "-metadata", f"title={secret[0]}",
        "file:x.mp4"]) is None
    assert command_line_secrets.native_downloads({}, secrets) == {
        "external_downloader": {"default": "native"}}


def test_a_download_without_a_persons_secrets_keeps_yt_dlps_choice_of_downloader() -> None:
    params = parsed_options(("--add-header", "Referer: https://site.example/",
                             "--user-agent", "Mozilla/5.0"))
    secrets = command_line_secrets.of_job("https://site.example/v?id=7&page=2", params)
    assert not secrets
    assert command_line_secrets.native_downloads(params, secrets) is params
    # the cookies a site sets for an anonymous visitor are its own
    assert secrets.refusal("ffmpeg", ["ffmpeg", "-cookies", "a=1", "-i", "https://x"]) is None
