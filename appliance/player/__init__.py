"""Playing the download folder's media in a browser or VLC: ffprobe, HLS playlists, segments
made by ffmpeg, subtitles as WebVTT."""

from .probe import Prober

__all__ = ["Prober"]
