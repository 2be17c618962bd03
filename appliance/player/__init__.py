"""Playing the download folder's media in a browser or VLC: ffprobe, HLS playlists, segments
made by ffmpeg, subtitles as WebVTT."""

from __future__ import annotations

from ..config import Settings
from .probe import Prober
from .segments import Slots


class Player:
    def __init__(self, settings: Settings) -> None:
        self.prober = Prober()
        self.slots = Slots(settings.player_max_ffmpeg)
        self.encoder = settings.player_encoder


__all__ = ["Player", "Prober"]
