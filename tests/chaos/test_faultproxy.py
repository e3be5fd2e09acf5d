"""The fault-injecting proxy and the fault schedule, fast (no federation)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.chaos.harness import FAULT_KINDS, plan_round
from tests.support.faultproxy import Proxy


def echo_one(c: socket.socket) -> None:
    with c:
        try:
            for d in iter(lambda: c.recv(65536), b""):
                c.sendall(d)
        except OSError:
            pass


@pytest.fixture()
def echo():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=echo_one, args=(c,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1]
    stop.set()
    srv.close()


@pytest.fixture()
def proxy():
    p = Proxy(seed=1)
    yield p
    p.close()


def roundtrip(port: int, data: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_forwards_then_refuses_then_heals(echo: int, proxy: Proxy) -> None:
    link = proxy.link("x", echo)
    assert roundtrip(link.port, b"hello" * 1000) == b"hello" * 1000
    link.set(mode="refuse")
    with pytest.raises((ConnectionError, OSError)):
        got = roundtrip(link.port, b"hello")
        assert got == b""
        raise ConnectionResetError("closed without data")
    link.heal()
    assert roundtrip(link.port, b"again") == b"again"


def test_stall_holds_data_until_healed(echo: int, proxy: Proxy) -> None:
    link = proxy.link("x", echo)
    link.set(mode="stall")
    with socket.create_connection(("127.0.0.1", link.port), timeout=1) as s:
        s.sendall(b"held")
        with pytest.raises(socket.timeout):
            s.recv(10)
        link.heal()
        s.settimeout(5)
        assert s.recv(10) == b"held"


def test_latency_bandwidth_and_resets(echo: int, proxy: Proxy) -> None:
    link = proxy.link("x", echo)
    link.set(latency_ms=300)
    t = time.monotonic()
    assert roundtrip(link.port, b"slow") == b"slow"
    assert time.monotonic() - t >= 0.55  # both directions wait
    link.set(bandwidth=50_000)
    t = time.monotonic()
    assert roundtrip(link.port, b"x" * 50_000) == b"x" * 50_000
    assert time.monotonic() - t >= 0.9  # 50 kB at 50 kB/s each way (the two directions overlap)
    link.set(reset_prob=1.0)
    with pytest.raises((ConnectionError, OSError)):
        if roundtrip(link.port, b"lost") != b"lost":
            raise ConnectionResetError("reset")
    assert link.stats["resets"] >= 1


def test_a_seed_replays_the_same_fault_schedule() -> None:
    a = [plan_round(77, n, length=30, kinds=FAULT_KINDS) for n in range(1, 20)]
    b = [plan_round(77, n, length=30, kinds=FAULT_KINDS) for n in range(1, 20)]
    c = [plan_round(78, n, length=30, kinds=FAULT_KINDS) for n in range(1, 20)]
    assert a == b and a != c
    kinds = {f.kind for r in a for f in r}
    assert len(kinds) >= 6
    assert all(0 <= f.at <= f.until <= 30 for r in a for f in r)
