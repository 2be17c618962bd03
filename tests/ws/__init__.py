"""The websocket sidecar against a real ``websockets`` client on 127.0.0.1."""
