"""yt-dlp kept current without a rebuild: the package index's newest release, an install
into the service's own virtual environment with a check and a roll back, and the service
that runs it (API, command, schedule)."""

from .service import YtdlpUpdates
from .updater import Outcome, Updater

__all__ = ["Outcome", "Updater", "YtdlpUpdates"]
