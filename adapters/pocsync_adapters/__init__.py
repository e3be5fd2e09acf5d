"""Regional directory formats for pocsync (installed as ``pocsync_adapters``).

An adapter turns a regional secretariat's own export into pocsync entries (plain JSON objects),
which then pass the strict validation at the origin like any other input.  Adapters are found
through the entry-point group ``pocsync.adapters``; each is a class with a ``name``, a
``description`` and ``read(data: bytes) -> list[dict]``.
"""
