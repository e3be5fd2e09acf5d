"""A node's folder on disk: its layout, sync.toml and key files."""
