"""Transports between nodes: HTTP pull (catch-up, anti-entropy) and MQTT push."""
