"""The gr-ria lab hub: registration, the agent WebSocket endpoint, control, live view, recording, republishing."""
