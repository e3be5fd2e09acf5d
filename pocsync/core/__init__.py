"""The pure core of pocsync: bytes and values in, objects out, typed errors raised.

Nothing in this package does I/O, imports asyncio, aiohttp, aiomqtt or sqlite, or
reads the clock: time is always a parameter.
"""
