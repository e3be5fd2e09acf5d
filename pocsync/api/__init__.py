"""The node's aiohttp server: peer sync endpoints (and, later, the PoC directory and health)."""
