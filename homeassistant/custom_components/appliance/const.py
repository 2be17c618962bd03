"""Constants of the appliance integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "appliance"
MANUFACTURER: Final = "appliance"
DEFAULT_PORT: Final = 8081

# The prefix an appliance behind a reverse proxy answers under (its YTP_BASE_PATH); absent
# for none.
CONF_BASE_PATH: Final = "base_path"
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

# The most of a text of the service's that becomes a name or a state (Home Assistant's limit
# for a state, and the one a name is cut to) ...
MAX_NAME: Final = 255
# A device's name: its entities' names are its own and theirs ("… Run now"), which together
# must fit MAX_NAME.
MAX_DEVICE_NAME: Final = 200
# ... or an attribute or an event's data: a URL's usual limit. Home Assistant's recorder
# stores 16 KiB of an entity's attributes and 32 KiB of an event's data at most, else nothing.
MAX_TEXT: Final = 2048
# An action's list of links or downloads (each is one request, a retry two, to the service),
# and a download's id (the service's are 36 characters).
MAX_LIST: Final = 1000
MAX_ID: Final = 128

# Item statuses of the service's wire protocol.
STATUS_PENDING: Final = "pending"
ACTIVE_STATUSES: Final = frozenset({"preparing", "downloading", "postprocessing"})
RETRYABLE_STATUSES: Final = frozenset({"error", "cancelled"})
