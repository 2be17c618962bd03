"""The download folder as clients see it: an index kept current by watchdog, the browser's
listing and actions, file and zip downloads."""

from .service import FileService

__all__ = ["FileService"]
