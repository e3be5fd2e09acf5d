"""The node's live state: what a running node knows now (runtime, read cache), below api and transport."""
