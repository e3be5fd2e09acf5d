"""The pure core of pocsync: bytes and values in, objects out, typed errors raised.

Nothing in this package does I/O, imports asyncio, aiohttp, aiomqtt or sqlite, or
reads the clock: time is always a parameter.

Where each rule lives: acceptance of a change-set, one function per PROTOCOL.md §8 step
(``acceptance``); equivocation, §11 (``equivocation``); the effect of ops, §8.2, and re-derivation
(``replica``, ``opkinds``, ``held``, ``checks``, ``templates``); the merge, §9 (``merge``); the
signing guard (``signing``); the typed outcomes and limits (``outcome``); the State interface
(``state``); the manifest, §6 (``manifest``).
"""
