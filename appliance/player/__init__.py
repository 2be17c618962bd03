"""Playing the download folder's media in a browser or VLC: ffprobe, HLS playlists, segments
made by ffmpeg, subtitles as WebVTT."""

from __future__ import annotations

from ..config import Settings, SettingsHolder
from ..recent import Recent
from ..slots import Slots
from .probe import Prober
from .subtitles import REFUSAL_KEPT, REFUSALS_KEPT


def ffmpeg_slots(count: int) -> Slots:
    return Slots(count, f"The player is busy ({count} ffmpeg processes, "
                        "YTP_PLAYER_MAX_FFMPEG); try again.")


class Player:
    def __init__(self, settings: SettingsHolder) -> None:
        self.settings = settings
        self.prober = Prober()
        self.slots = ffmpeg_slots(settings.current.player_max_ffmpeg)
        # subtitle files ffmpeg refused: (device, inode, size, mtime) -> what was said
        self.subtitle_refusals: Recent[tuple[int, ...], str] = Recent(REFUSAL_KEPT, REFUSALS_KEPT)
        settings.on_change(self._settings_changed)

    @property
    def encoder(self) -> str:
        return self.settings.current.player_encoder

    def _settings_changed(self, old: Settings, new: Settings) -> None:
        # Segments being made give their slot back to the Slots they took it from.
        if new.player_max_ffmpeg != old.player_max_ffmpeg:
            self.slots = ffmpeg_slots(new.player_max_ffmpeg)


__all__ = ["Player", "Prober"]
