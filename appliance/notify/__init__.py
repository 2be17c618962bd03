"""Notifications: Apprise targets and plain webhooks, delivered off the engine's path."""

from .catalog import EVENTS
from .notifier import Notifier

__all__ = ["EVENTS", "Notifier"]
