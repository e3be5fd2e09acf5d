"""The ``pocsync`` command line: a thin layer over the library (click + rich)."""
