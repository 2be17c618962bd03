"""Playing the download folder's media in a browser or VLC: ffprobe, HLS playlists, segments
made by ffmpeg, subtitles as WebVTT."""

from __future__ import annotations

from ..config import Settings, SettingsHolder
from .probe import Prober
from .slots import Slots

FFMPEG_SLOTS = "ffmpeg processes, YTP_PLAYER_MAX_FFMPEG"


class Player:
    def __init__(self, settings: SettingsHolder) -> None:
        self.settings = settings
        self.prober = Prober()
        self.slots = Slots(settings.current.player_max_ffmpeg, FFMPEG_SLOTS)
        settings.on_change(self._settings_changed)

    @property
    def encoder(self) -> str:
        return self.settings.current.player_encoder

    def _settings_changed(self, old: Settings, new: Settings) -> None:
        # Segments being made give their slot back to the Slots they took it from.
        if new.player_max_ffmpeg != old.player_max_ffmpeg:
            self.slots = Slots(new.player_max_ffmpeg, FFMPEG_SLOTS)


__all__ = ["Player", "Prober"]
