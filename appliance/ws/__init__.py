"""The websocket sidecar: YTPTube's ``/ws`` and Flasharr's ``/api/ws`` on the event bus."""

from appliance.ws.server import WebsocketServer, WebsocketService

__all__ = ["WebsocketServer", "WebsocketService"]
