"""Agent-side library of gr-ria: config file, registration, hardware detection, health, the headless service."""
