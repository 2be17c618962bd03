"""The download folder in Home Assistant's media browser.

Browsing reads the service's file browser (``GET /api/file/browser/{path}``). Playing asks
the service for a file ticket (``POST /api/auth/file-ticket``) and hands the player the
service's own ranged download URL with it (or, for what players do not take as it is, the
service's HLS playlist of it): a cast device or a phone app fetches the file straight from
the appliance, without credentials, for a few hours, and that URL opens no other file.

Identifiers: ``<config entry id>/<path in the download folder>``.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.media_player.const import MediaClass
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.components.media_source import (
    BrowseMediaSource,
    MediaSource,
    MediaSourceItem,
    PlayMedia,
    Unresolvable,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

from .api import ApplianceError, capped, records
from .const import DOMAIN, MAX_NAME
from .coordinator import ApplianceConfigEntry

# What cast devices and browsers play as it is; anything else (an MKV, an AVI) is played
# through the service's HLS player, which remuxes or transcodes it.
DIRECT_TYPES = frozenset({"video/mp4", "video/webm", "audio/mpeg", "audio/mp4", "audio/aac",
                          "audio/ogg", "audio/flac", "audio/wav", "audio/webm"})
HLS_TYPE = "application/x-mpegURL"

# What the browser shows of a folder, by the service's content_type; sidecars (subtitles,
# metadata, thumbnails' text) are left out.
MEDIA_CLASSES = {
    "dir": MediaClass.DIRECTORY,
    "video": MediaClass.VIDEO,
    "audio": MediaClass.MUSIC,
    "image": MediaClass.IMAGE,
}


async def async_get_media_source(hass: HomeAssistant) -> MediaSource:
    return ApplianceMediaSource(hass)


class ApplianceMediaSource(MediaSource):
    name = "Appliance"

    def __init__(self, hass: HomeAssistant) -> None:
        super().__init__(DOMAIN)
        self.hass = hass

    def _entries(self) -> list[ApplianceConfigEntry]:
        return [entry for entry in self.hass.config_entries.async_entries(DOMAIN)
                if entry.state is ConfigEntryState.LOADED]

    def _entry(self, identifier: str) -> tuple[ApplianceConfigEntry, str]:
        entry_id, _, path = identifier.partition("/")
        if ".." in path.replace("\\", "/").split("/"):
            # A URL client folds "a/../.." away before the service could refuse it.
            raise BrowseError(translation_domain=DOMAIN, translation_key="parent_path")
        for entry in self._entries():
            if entry.entry_id == entry_id:
                return entry, path
        raise BrowseError(translation_domain=DOMAIN, translation_key="unknown_entry",
                          translation_placeholders={"entry": entry_id})

    async def async_browse_media(self, item: MediaSourceItem) -> BrowseMediaSource:
        if item.identifier:
            return await self._browse(*self._entry(item.identifier))
        entries = self._entries()
        if len(entries) == 1:
            return await self._browse(entries[0], "")
        root = BrowseMediaSource(
            domain=DOMAIN, identifier=None, media_class=MediaClass.DIRECTORY,
            media_content_type="", title=self.name, can_play=False, can_expand=True,
            children_media_class=MediaClass.DIRECTORY)
        root.children = [
            BrowseMediaSource(
                domain=DOMAIN, identifier=f"{entry.entry_id}/",
                media_class=MediaClass.DIRECTORY, media_content_type="",
                title=entry.title, can_play=False, can_expand=True)
            for entry in entries]
        return root

    async def _browse(self, entry: ApplianceConfigEntry, path: str) -> BrowseMediaSource:
        try:
            listing = await entry.runtime_data.client.browse(path)
        except ApplianceError as err:
            raise BrowseError(translation_domain=DOMAIN, translation_key="refused",
                              translation_placeholders={"error": str(err)}) from err
        folder = str(listing.get("path") or "").strip("/")
        node = BrowseMediaSource(
            domain=DOMAIN, identifier=f"{entry.entry_id}/{folder}",
            media_class=MediaClass.DIRECTORY, media_content_type="",
            title=folder.rpartition("/")[2] or entry.title, can_play=False, can_expand=True)
        node.children = [child for found in records(listing.get("contents"))
                         if (child := _child(entry, found)) is not None]
        return node

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        try:
            entry, path = self._entry(item.identifier)
            ticket = await entry.runtime_data.client.file_ticket(path)
        except BrowseError as err:
            raise Unresolvable(translation_domain=DOMAIN, translation_key=err.translation_key,
                               translation_placeholders=err.translation_placeholders) from err
        except ApplianceError as err:
            raise Unresolvable(translation_domain=DOMAIN, translation_key="refused",
                               translation_placeholders={"error": str(err)}) from err
        mime = str(ticket.get("mime") or "")
        if mime in DIRECT_TYPES or mime.startswith("image/"):
            return PlayMedia(ticket["url"], mime)
        return PlayMedia(ticket["playlist"], HLS_TYPE)


def _child(entry: ApplianceConfigEntry, found: dict[str, Any]) -> BrowseMediaSource | None:
    media_class = MEDIA_CLASSES.get(str(found.get("content_type")))
    if media_class is None:
        return None
    is_dir = media_class is MediaClass.DIRECTORY
    # (a name as a state is cut; a page of a thousand names of megabytes each went whole to
    # every browser that showed the folder)
    return BrowseMediaSource(
        domain=DOMAIN, identifier=f"{entry.entry_id}/{str(found.get('path', '')).strip('/')}",
        media_class=media_class,
        media_content_type="" if is_dir else str(capped(found.get("mime") or "", MAX_NAME)),
        title=str(capped(found.get("name"), MAX_NAME)), can_play=not is_dir,
        can_expand=is_dir)
