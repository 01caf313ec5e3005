"""Agent-side library of gr-ria: protocol, config file, hardware detection, WebSocket transport."""
