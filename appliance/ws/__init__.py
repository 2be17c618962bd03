"""The websocket sidecar: YTPTube's ``/ws`` and Flasharr's ``/api/ws`` on the event bus."""

from appliance.ws.server import WebsocketServer, WebsocketService, check_credentials

__all__ = ["WebsocketServer", "WebsocketService", "check_credentials"]
