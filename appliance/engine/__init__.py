"""The download engine: queue, warm yt-dlp processes, progress, recovery."""

from .engine import DownloadEngine

__all__ = ["DownloadEngine"]
