"""``appliance tui``: the terminal dashboard. It talks to the service only through
:mod:`appliance.client` (the HTTP API and the websocket), never through the service's code."""
