"""The daemon's end of the commit FIFO (ADR 41): another process's commit wakes the publisher at once.

At start the daemon makes the named pipe beside its store file (``store.commits``, mode 0600) if it is
missing, opens it for reading (non-blocking) and keeps a write end of its own open, so the read end
never sees end-of-file and the event loop never spins on it.  ``loop.add_reader`` drains it: each byte
is one commit notified by a writer (``pocsync/store/notify.py``); the drain counts them
(``commit_notifications``) and sets ``rt.publish_now``.

Anything else at the path (a regular file, a symlink, a pipe of another user) is never read or written:
one WARNING line, and the daemon learns of commits by its ``data_version`` safety net only.  On a clean
shutdown both ends are closed and the pipe is removed (if it is still the one opened), so a stopped
node's folder copies like any other folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from pocsync.live.runtime import RUNTIME
from pocsync.store.notify import fifo_path

log = logging.getLogger("pocsync.node")
_NOFOLLOW = os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
READ_CHUNK = 4096


class CommitFifo:
    """The read end (and a kept write end) of the commit FIFO at ``path``; ``on_commits(n)`` per drain."""

    def __init__(self, path: Path, on_commits: Callable[[int], None]) -> None:
        self.path = path
        self.on_commits = on_commits
        self.rfd: int | None = None
        self.wfd: int | None = None
        self._ino: tuple[int, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> bool:
        """Make (if missing) and open the FIFO and watch it on the running loop; False (one warning) when
        what is at the path cannot be used."""
        try:
            self._open_fds()
        except OSError as exc:
            self.close(unlink=False)
            log.warning(
                "commit pipe %s not used (%s): the daemon learns of other processes' commits by polling only",
                self.path,
                exc.strerror or exc,
                extra={"fields": {"event": "commit_fifo_unusable", "path": str(self.path), "error": str(exc)}},
            )
            return False
        self._loop = asyncio.get_running_loop()
        assert self.rfd is not None
        self._loop.add_reader(self.rfd, self._drain)
        return True

    def _open_fds(self) -> None:
        with contextlib.suppress(FileExistsError):
            os.mkfifo(self.path, 0o600)
        if not stat.S_ISFIFO(os.lstat(self.path).st_mode):  # a symlink or a file: not even opened
            raise OSError("it exists and is not a named pipe")
        self.rfd = os.open(self.path, os.O_RDONLY | _NOFOLLOW)
        st = os.fstat(self.rfd)
        if not stat.S_ISFIFO(st.st_mode) or st.st_uid != os.geteuid():
            raise OSError("it is not a named pipe of this user")
        if stat.S_IMODE(st.st_mode) != 0o600:
            os.fchmod(self.rfd, 0o600)  # only this user may wake the publisher
        self.wfd = os.open(self.path, os.O_WRONLY | _NOFOLLOW)  # a reader is open: does not block
        wst = os.fstat(self.wfd)
        if (wst.st_dev, wst.st_ino) != (st.st_dev, st.st_ino):
            raise OSError("it was replaced while it was opened")
        self._ino = (st.st_dev, st.st_ino)

    def _drain(self) -> None:
        """Read every pending byte (one per notified commit) and report how many."""
        n = 0
        while self.rfd is not None:
            try:
                chunk = os.read(self.rfd, READ_CHUNK)
            except BlockingIOError:
                break
            except OSError as exc:  # not expected on a pipe; stop watching rather than spin
                log.warning("commit pipe %s unreadable: %s; polling only", self.path, exc)
                self.close(unlink=False)
                break
            n += len(chunk)
            if len(chunk) < READ_CHUNK:
                break
        if n:
            self.on_commits(n)

    def close(self, *, unlink: bool = True) -> None:
        if self.rfd is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.rfd)
        self._loop = None
        for fd in (self.rfd, self.wfd):
            if fd is not None:
                os.close(fd)
        self.rfd = self.wfd = None
        if unlink and self._ino is not None:
            with contextlib.suppress(OSError):
                st = os.lstat(self.path)
                if (st.st_dev, st.st_ino) == self._ino:  # still the pipe this daemon made or opened
                    os.unlink(self.path)
        self._ino = None


async def commit_fifo_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context of the daemon: the commit FIFO for the node's whole life."""
    rt = app[RUNTIME]

    def woken(n: int) -> None:
        rt.counters["commit_notifications"] += n
        rt.publish_now.set()

    fifo = CommitFifo(fifo_path(rt.cfg.store_path), woken)
    fifo.open()
    yield
    fifo.close()
