"""Tell a running daemon that this process committed to the store (ADR 41).

The daemon keeps a named pipe (FIFO, mode 0600) beside the store file open for reading; a process that
commits a write transaction writes one byte into it, which wakes the daemon's publisher at once instead
of at its next ``PRAGMA data_version`` check.  The byte carries nothing: whoever can write the pipe can
only make the publisher look at the store.

:func:`commit_notify` never raises and never blocks: no pipe (ENOENT), no daemon reading it (ENXIO), a
full pipe (EAGAIN: a wake-up is already pending) or a symlink at the path (ELOOP) are all silent.  What
is at the path is opened without following a symlink and written to only if ``fstat`` says it is a FIFO
owned by this user (or this process is root): a regular file or device put there is never written.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: the FIFO's name is the store file's stem with this suffix (``store.sqlite`` → ``store.commits``): not
#: ``store.sqlite.commits``, so that the usual ``store.sqlite*`` glob for the store and its -wal/-shm files
#: (backups, copies) never meets a pipe, whose read would block
SUFFIX = ".commits"
_FLAGS = os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


def fifo_path(store: Path) -> Path:
    """Where the daemon of the store file ``store`` listens for commits."""
    p = store.with_name(store.stem + SUFFIX)
    return p if p != store else store.with_name(store.name + SUFFIX)


def commit_notify(fifo: Path | None) -> bool:
    """Write one byte into the commit FIFO ``fifo`` if a daemon reads it; True when a byte was written."""
    if fifo is None:
        return False
    try:
        fd = os.open(fifo, _FLAGS)
    except OSError:  # ENOENT (no pipe), ENXIO (no reader), ELOOP (a symlink), EACCES, …
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISFIFO(st.st_mode) or (st.st_uid != os.geteuid() and os.geteuid() != 0):
            return False  # not our pipe: never written to
        os.write(fd, b"\x01")
        return True
    except OSError:  # EAGAIN: the pipe is full, a wake-up is already pending
        return False
    finally:
        os.close(fd)
