"""The pocsync daemon: an aiohttp application whose named tasks sync the node with its peers."""
