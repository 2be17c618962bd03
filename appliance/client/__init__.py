"""A client for the service's wire protocol: the HTTP API and the ``/ws`` websocket.

It knows nothing of the service's code (no engine, store, api or config import: a test
checks), so the same client drives the box it runs on or a remote one. ``appliance add``,
``appliance status`` and ``appliance tui`` use it.
"""

from .connection import Connection, ConnectionFileProblem, LocalService, resolve
from .http import ApiClient, ApiError, Page, Unreachable
from .live import LiveEvent, parse_frame

__all__ = [
    "ApiClient",
    "ApiError",
    "Connection",
    "ConnectionFileProblem",
    "LiveEvent",
    "LocalService",
    "Page",
    "Unreachable",
    "parse_frame",
    "resolve",
]
