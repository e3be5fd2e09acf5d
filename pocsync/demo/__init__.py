"""A local federation on embedded defaults (pocsync demo)."""
