"""Talking to IQ Server: wire models (shared with the simulator) and the HTTP client."""
