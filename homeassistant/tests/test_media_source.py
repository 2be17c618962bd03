"""The download folder in Home Assistant's media browser, against a real appliance: browse,
resolve to a file ticket URL, then fetch that URL from the real service without credentials
(the whole file, a range), and see it open no other file."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from homeassistant.components import media_source
from homeassistant.components.media_player import BrowseError, MediaClass
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.appliance.const import DOMAIN
from support.server import Server

from .conftest import entry_data, in_executor, instance_id, until

CLIP = os.urandom(96 * 1024)
OTHER = b"not the clip"
ROOT = "media-source://appliance"


@pytest.fixture(scope="module")
def files(appliance: Server, media: dict[str, str]) -> Iterator[Path]:
    """Files in the real service's download folder: videos, a song and a sidecar, and a
    real clip as Matroska (what a cast device does not play as it is)."""
    shows = appliance.download_path / "shows"
    shows.mkdir(parents=True, exist_ok=True)
    clip = shows / "real.mp4"
    clip.write_bytes(requests.get(media["clip"], timeout=30).content)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-c", "copy",
                    str(shows / "real.mkv")], check=True, timeout=60)
    (shows / "clip [abcdefghijk].mp4").write_bytes(CLIP)
    (shows / "clip [abcdefghijk].en.vtt").write_text("WEBVTT\n")
    (shows / "other.mp4").write_bytes(OTHER)
    (appliance.download_path / "song.mp3").write_bytes(b"ID3")
    # (a folder whose name begins and ends with what a slash's strip must leave)
    (shows / "X-Files X").mkdir(exist_ok=True)
    (shows / "X-Files X" / "Xmas.mp3").write_bytes(b"ID3")
    yield shows


@pytest.fixture
async def browser(hass: HomeAssistant, loaded_entry: MockConfigEntry, files: Path) -> None:
    assert await async_setup_component(hass, "media_source", {})
    await hass.async_block_till_done()


async def browse(hass: HomeAssistant, uri: str) -> media_source.BrowseMediaSource:
    return await media_source.async_browse_media(hass, uri)


async def test_browse_the_download_folder(hass: HomeAssistant, browser: None,
                                          loaded_entry: MockConfigEntry) -> None:
    root = await until_listed(hass, ROOT, "shows")
    assert root["shows"].can_expand and not root["shows"].can_play
    assert root["song.mp3"].media_class == MediaClass.MUSIC and root["song.mp3"].can_play
    shows = await until_listed(hass, root["shows"].media_content_id, "other.mp4")
    clip = shows["clip [abcdefghijk].mp4"]
    assert clip.media_class == MediaClass.VIDEO and clip.media_content_type == "video/mp4"
    assert clip.media_content_id == f"{ROOT}/{loaded_entry.entry_id}/shows/clip [abcdefghijk].mp4"
    assert not any(t.endswith(".vtt") for t in shows)  # sidecars are not media
    xfiles = shows["X-Files X"].media_content_id
    assert xfiles == f"{ROOT}/{loaded_entry.entry_id}/shows/X-Files X"
    await until_listed(hass, xfiles, "Xmas.mp3")
    node = await browse(hass, xfiles)
    assert (node.title, node.media_content_id) == ("X-Files X", xfiles)
    by_entry = await browse(hass, f"{ROOT}/{loaded_entry.entry_id}/")
    assert {c.title for c in by_entry.children} == set(root)

    assert by_entry.media_content_type == "" and by_entry.can_expand
    with pytest.raises(BrowseError) as unknown:
        await browse(hass, f"{ROOT}/not-an-entry/shows")
    assert unknown.value.translation_key == "unknown_entry"
    with pytest.raises(BrowseError, match="does not exist"):
        await browse(hass, f"{ROOT}/{loaded_entry.entry_id}/missing")
    with pytest.raises(BrowseError, match=r"'\.\.'"):
        await browse(hass, f"{ROOT}/{loaded_entry.entry_id}/shows/../..")
    # control characters and escapes name no folder of the download folder (a line break
    # never reaches the integration: Home Assistant's media-source URI ends before it)
    for bad in ("shows\x00", "shows/\x7f", "%2e%2e/%2e%2e", "shows%2F..%2F.."):
        with pytest.raises(BrowseError):
            await browse(hass, f"{ROOT}/{loaded_entry.entry_id}/{bad}")


async def until_listed(hass: HomeAssistant, uri: str, name: str
                       ) -> dict[str, media_source.BrowseMediaSource]:
    """The folder's children by title, once ``name`` is among them (the service indexes new
    files as its watcher sees them)."""
    async def listed() -> dict[str, media_source.BrowseMediaSource] | None:
        found = {c.title: c for c in (await browse(hass, uri)).children}
        return found if name in found else None

    found: dict[str, media_source.BrowseMediaSource] = await until(
        listed, message=f"{name} in {uri}")
    return found


async def test_resolve_plays_the_file_from_the_service(
        hass: HomeAssistant, browser: None, loaded_entry: MockConfigEntry,
        appliance: Server) -> None:
    uri = f"{ROOT}/{loaded_entry.entry_id}/shows/clip [abcdefghijk].mp4"
    await until_listed(hass, f"{ROOT}/{loaded_entry.entry_id}/shows", "clip [abcdefghijk].mp4")
    played = await media_source.async_resolve_media(hass, uri, None)
    assert played.mime_type == "video/mp4"
    assert played.url.startswith(f"http://127.0.0.1:{appliance.port}/api/download/shows/")

    def fetch(url: str, **headers: str) -> requests.Response:
        return requests.get(url, headers=headers, timeout=30)  # no credentials at all

    whole = await in_executor(hass, fetch, played.url)
    assert whole.status_code == 200 and whole.content == CLIP
    part = await in_executor(hass, lambda: fetch(played.url, Range="bytes=1000-1999"))
    assert part.status_code == 206 and part.content == CLIP[1000:2000]
    other = played.url.replace("clip%20%5Babcdefghijk%5D.mp4", "other.mp4")
    assert other != played.url
    refused = await in_executor(hass, fetch, other)
    assert refused.status_code == 403 and "another file" in refused.json()["error"]
    plain = await in_executor(hass, fetch, played.url.partition("?")[0])
    assert plain.status_code == 401

    # An absolute path is the appliance's to refuse: it opens files of its download folder.
    for bad in ("shows/missing.mp4", "shows", "../secret", "", "/etc/hostname",
                "shows\\..\\..\\x", "shows/\x00other.mp4", "shows/\x1bother.mp4",
                "%2e%2e/%2e%2e/etc/hostname", "..%2F..%2Fetc%2Fhostname", "shows/./../.."):
        with pytest.raises(media_source.Unresolvable):
            await media_source.async_resolve_media(
                hass, f"{ROOT}/{loaded_entry.entry_id}/{bad}", None)
    with pytest.raises(media_source.Unresolvable):
        await media_source.async_resolve_media(hass, f"{ROOT}/not-an-entry/shows/other.mp4",
                                               None)


async def test_what_casts_do_not_take_plays_over_hls(
        hass: HomeAssistant, browser: None, loaded_entry: MockConfigEntry) -> None:
    folder = f"{ROOT}/{loaded_entry.entry_id}/shows"
    await until_listed(hass, folder, "real.mkv")
    played = await media_source.async_resolve_media(hass, f"{folder}/real.mkv", None)
    assert played.mime_type == "application/x-mpegURL"
    assert "/api/player/playlist/shows/real.mkv.m3u8?ticket=" in played.url

    def fetch(url: str) -> requests.Response:
        return requests.get(url, timeout=60)  # no credentials: the ticket carries on

    master = await in_executor(hass, fetch, played.url)
    assert master.status_code == 200, master.text
    base = played.url.split("/api/")[0]
    [video] = [line for line in master.text.splitlines() if line.startswith("/")]
    media = await in_executor(hass, fetch, base + video)
    assert media.status_code == 200, media.text
    first = next(line for line in media.text.splitlines() if line.startswith("/"))
    segment = await in_executor(hass, fetch, base + first)
    assert segment.status_code == 200 and segment.content[:1] == b"\x47"  # MPEG-TS
    # An MP4 plays as it is.
    direct = await media_source.async_resolve_media(hass, f"{folder}/real.mp4", None)
    assert direct.mime_type == "video/mp4" and "/api/download/" in direct.url


async def test_two_appliances_are_two_folders(
        hass: HomeAssistant, browser: None, loaded_entry: MockConfigEntry,
        appliance: Server) -> None:
    # (the same appliance: an entry loads only where its own appliance answers)
    second = MockConfigEntry(domain=DOMAIN, title="Second", unique_id=instance_id(appliance),
                             data=entry_data(appliance))
    second.add_to_hass(hass)
    assert await hass.config_entries.async_setup(second.entry_id)
    await hass.async_block_till_done()
    try:
        root = await browse(hass, ROOT)
        assert {c.title: c.media_content_id for c in root.children} == {
            loaded_entry.title: f"{ROOT}/{loaded_entry.entry_id}/",
            "Second": f"{ROOT}/{second.entry_id}/"}
        shows = await until_listed(hass, f"{ROOT}/{second.entry_id}/shows", "other.mp4")
        assert shows["other.mp4"].media_content_id.startswith(f"{ROOT}/{second.entry_id}/")
    finally:
        assert await hass.config_entries.async_unload(second.entry_id)
        await hass.async_block_till_done()
    assert {c.title for c in (await browse(hass, ROOT)).children} == {"shows", "song.mp3"}
