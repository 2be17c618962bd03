"""Scheduled tasks: subscriptions to channels, playlists and feeds that run themselves.

Knows the rooms below it only: store, engine, events, config.
"""

from .service import TaskService

__all__ = ["TaskService"]
