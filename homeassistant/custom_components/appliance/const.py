"""Constants of the appliance integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "appliance"
MANUFACTURER: Final = "appliance"
DEFAULT_PORT: Final = 8081

CONF_DEFAULT_PRESET: Final = "default_preset"
CONF_CHECK_UPDATES: Final = "check_updates"
DEFAULT_PRESET: Final = "default"

# Bus events for automations (and the device triggers built on them).
EVENT_FINISHED: Final = f"{DOMAIN}_download_finished"
EVENT_FAILED: Final = f"{DOMAIN}_download_failed"
EVENT_QUEUED: Final = f"{DOMAIN}_download_queued"
TRIGGER_EVENTS: Final = {
    "download_finished": EVENT_FINISHED,
    "download_failed": EVENT_FAILED,
    "download_queued": EVENT_QUEUED,
}

# Item statuses of the service's wire protocol.
STATUS_PENDING: Final = "pending"
ACTIVE_STATUSES: Final = frozenset({"preparing", "downloading", "postprocessing"})
RETRYABLE_STATUSES: Final = frozenset({"error", "cancelled"})
