"""The commit notification (ADR 41): a committing process writes one byte into the daemon's FIFO, and
never raises, blocks or writes anything that is not a pipe of its user; real FIFOs, files and symlinks."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pocsync.core.outcome import Limits
from pocsync.live.worker import StoreWorker
from pocsync.node.commit_fifo import CommitFifo
from pocsync.store import Store
from pocsync.store.notify import commit_notify, fifo_path


@pytest.fixture()
def fifo(tmp_path: Path) -> Path:
    p = tmp_path / "store.commits"
    os.mkfifo(p, 0o600)
    return p


@pytest.fixture()
def reader(fifo: Path) -> Iterator[int]:
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    yield fd
    os.close(fd)


def pending(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return b""


def test_the_fifo_sits_beside_the_store_and_is_not_matched_by_the_stores_glob(tmp_path: Path) -> None:
    assert fifo_path(tmp_path / "store.sqlite") == tmp_path / "store.commits"
    assert not fifo_path(tmp_path / "store.sqlite").name.startswith("store.sqlite")
    assert fifo_path(tmp_path / "x.commits") == tmp_path / "x.commits.commits"  # never the store itself


def test_a_reader_gets_one_byte_per_notification(fifo: Path, reader: int) -> None:
    assert commit_notify(fifo) and commit_notify(fifo)
    assert pending(reader) == b"\x01\x01"


def test_no_pipe_or_no_reader_is_silent(tmp_path: Path, fifo: Path) -> None:
    assert commit_notify(tmp_path / "missing.commits") is False  # ENOENT
    assert commit_notify(fifo) is False  # a pipe nobody reads: ENXIO
    assert commit_notify(None) is False


def test_a_regular_file_at_the_path_is_never_written(tmp_path: Path) -> None:
    p = tmp_path / "store.commits"
    p.write_bytes(b"precious")
    assert commit_notify(p) is False
    assert p.read_bytes() == b"precious"


def test_a_symlink_at_the_path_is_never_followed(tmp_path: Path, fifo: Path, reader: int) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"precious")
    link = tmp_path / "link.commits"
    link.symlink_to(target)
    assert commit_notify(link) is False
    assert target.read_bytes() == b"precious"
    link.unlink()
    link.symlink_to(fifo)  # even to a real pipe that is read
    assert commit_notify(link) is False
    assert pending(reader) == b""


def test_a_full_pipe_neither_raises_nor_blocks(fifo: Path, reader: int) -> None:
    w = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(BlockingIOError):
            while True:
                os.write(w, b"\0" * 4096)
        t0 = time.perf_counter()
        for _ in range(100):
            assert commit_notify(fifo) is False  # EAGAIN: a wake-up is already pending
        per_call = (time.perf_counter() - t0) / 100
        assert per_call < 0.005, f"{per_call * 1e6:.0f} µs per notification"
    finally:
        os.close(w)


def test_a_transaction_notifies_once_after_its_commit_an_empty_one_or_a_rollback_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with Store.create(path, node_id="eu") as store:
        assert store.commit_fifo == fifo_path(path)
        os.mkfifo(store.commit_fifo, 0o600)
        fd = os.open(fifo_path(path), os.O_RDONLY | os.O_NONBLOCK)
        try:
            with store.transaction():
                store.set_meta("a", "1")
                with store.transaction():  # joins the outer one: one commit, one byte
                    store.set_meta("b", "2")
                assert pending(fd) == b"", "nothing before the COMMIT"
            assert pending(fd) == b"\x01"
            with store.transaction():  # wrote nothing (as Store.open's migration check): nothing to tell
                store.get_meta("a")
            assert pending(fd) == b""
            with pytest.raises(RuntimeError), store.transaction():
                store.set_meta("c", "3")
                raise RuntimeError("rolled back")
            assert pending(fd) == b""
            assert store.get_meta("c") is None
        finally:
            os.close(fd)


def test_the_daemons_own_store_worker_does_not_notify_itself(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    Store.create(path, node_id="eu").close()
    os.mkfifo(fifo_path(path), 0o600)
    fd = os.open(fifo_path(path), os.O_RDONLY | os.O_NONBLOCK)

    def commit(s: Store) -> None:
        with s.transaction():
            s.set_meta("x", "1")

    async def in_daemon() -> None:
        worker = StoreWorker(path, limits=Limits())
        await worker.start()
        try:
            await worker.run(commit)
        finally:
            await worker.close()

    try:
        asyncio.run(in_daemon())
        assert pending(fd) == b""
        with Store.open(path) as other:  # another process's store does
            commit(other)
        assert pending(fd) == b"\x01"
    finally:
        os.close(fd)


# --- the daemon's end --------------------------------------------------------------------------------


def run_fifo(path: Path, notifications: int = 0) -> tuple[bool, list[int], CommitFifo]:
    """Open a CommitFifo at ``path`` on a fresh loop, notify ``notifications`` times, drain, close; what it saw."""
    seen: list[int] = []

    async def go() -> tuple[bool, CommitFifo]:
        got = asyncio.Event()

        def on(n: int) -> None:
            seen.append(n)
            got.set()

        f = CommitFifo(path, on)
        ok = f.open()
        if ok and notifications:
            for _ in range(notifications):
                commit_notify(path)
            await asyncio.wait_for(got.wait(), 5)
        f.close()
        return ok, f

    ok, f = asyncio.run(go())
    return ok, seen, f


def test_the_daemon_makes_a_0600_pipe_is_woken_by_a_notification_and_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "store.commits"
    ok, seen, _ = run_fifo(path, 3)
    assert ok
    assert sum(seen) == 3  # one byte per commit, drained in one or more reads
    assert not path.exists(), "a clean shutdown removes the pipe it made"


def test_the_daemon_reads_its_pipe_only_0600_and_never_sees_end_of_file(tmp_path: Path) -> None:
    path = tmp_path / "store.commits"
    os.mkfifo(path)
    path.chmod(0o666)

    async def go() -> None:
        f = CommitFifo(path, lambda n: None)
        assert f.open()
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert f.rfd is not None
        with pytest.raises(BlockingIOError):  # its own write end is open: no EOF (b"") to spin on
            os.read(f.rfd, 1)
        f.close()

    asyncio.run(go())


@pytest.mark.parametrize("kind", ["file", "symlink", "dangling"])
def test_anything_but_a_pipe_at_the_path_is_one_warning_and_never_touched(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "store.commits"
    target = tmp_path / "target"
    if kind == "file":
        path.write_bytes(b"precious")
    elif kind == "symlink":
        os.mkfifo(target, 0o600)
        path.symlink_to(target)
    else:
        path.symlink_to(tmp_path / "nowhere")
    with caplog.at_level(logging.WARNING, logger="pocsync.node"):
        ok, seen, _ = run_fifo(path)
    assert not ok and seen == []
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "polling only" in caplog.records[0].getMessage()
    assert os.path.lexists(path), "left where it was"
    if kind == "file":
        assert path.read_bytes() == b"precious"
    if kind == "dangling":
        assert not (tmp_path / "nowhere").exists(), "no pipe made through the link"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a pipe owned by another user")
def test_a_pipe_of_another_user_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "store.commits"
    os.mkfifo(path)
    path.chmod(0o666)
    os.chown(path, 65534, 65534)
    with caplog.at_level(logging.WARNING, logger="pocsync.node"):
        ok, _, _ = run_fifo(path)
    assert not ok
    assert "not a named pipe of this user" in caplog.text
    assert path.stat().st_uid == 65534 and oct(path.stat().st_mode & 0o777) == "0o666"


def test_shutdown_leaves_a_path_replaced_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "store.commits"

    async def go() -> None:
        f = CommitFifo(path, lambda n: None)
        assert f.open()
        path.unlink()
        path.write_bytes(b"someone else's")
        f.close()

    asyncio.run(go())
    assert path.read_bytes() == b"someone else's"
