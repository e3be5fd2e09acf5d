"""Joining and catching up: cold start over N change-sets, catch-up of k missed ones, a node's peak RSS.

A node ``un`` holds a history of N change-sets of its own (written with ``pocsync log import``,
whose wall time is the cold start's limit: a plain import of the same log).  A second node ``osce``
then pulls over HTTP through a byte-counting relay, with default settings: from nothing (cold
start) or from N - k (catch-up).  Bytes are what crossed the relay both ways; raw size is the sum of
the k missed envelopes; a full export is ``pocsync log export`` of the whole log.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pocsync.bench.fed import CountingRelay, Federation, Node, peak_rss_kib, wait_for
from pocsync.bench.history import chain, keys_for
from pocsync.store import queries

IMPORT_PART = 40_000  # lines per `log import` file (about 38 MB), under the CLI's input cap


def _head(store_path: Path, origin: str) -> int:
    c = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    try:
        return queries.origin_head(c, origin)
    except sqlite3.OperationalError:
        return 0
    finally:
        c.close()


def _cli(*args: str | Path, stdin: Path | None = None, stdout: Path | None = None) -> float:
    t0 = time.perf_counter()
    with open(stdin or "/dev/null", "rb") as i, open(stdout or "/dev/null", "wb") as o:
        p = subprocess.run(
            [sys.executable, "-m", "pocsync.cli.main", *map(str, args)], stdin=i, stdout=o, stderr=subprocess.PIPE
        )
    if p.returncode != 0:
        raise RuntimeError(f"pocsync {' '.join(map(str, args))} failed: {p.stderr.decode()[-2000:]}")
    return time.perf_counter() - t0


def _problems(log: Path) -> int:
    if not log.exists():
        return 0
    return sum(
        1
        for ln in log.read_text(errors="replace").splitlines()
        if any(w in ln.lower() for w in ("fail", "error", "warning", "traceback"))
    )


def _pull(joiner: Node, source: Node, relay_to: int, n: int) -> tuple[float, int, int, float]:
    """Start ``joiner`` pulling only from ``source`` (via a relay).

    Seconds from starting its process until it holds seq n, bytes both ways, its peak RSS (KiB), and
    the seconds its process took to listen (part of the first figure).
    """
    with CountingRelay(relay_to) as relay:
        joiner.set_sync(peers=[relay.url], discover_peers=False)
        t0 = time.perf_counter()
        try:
            joiner.start()
            up_s = time.perf_counter() - t0
            try:
                wait_for(
                    lambda: _head(joiner.nd.config.store_path, "un") >= n,
                    max(120.0, n / 25),
                    f"{joiner.name} to reach seq {n}",
                    step=0.05,
                )
            except TimeoutError as exc:  # the run's folder is removed afterwards: keep the evidence
                tail = "\n".join(joiner.log.read_text(errors="replace").splitlines()[-5:])
                raise TimeoutError(
                    f"{exc} (holds {_head(joiner.nd.config.store_path, 'un')}); last lines of its log:\n{tail}"
                ) from None
            secs = time.perf_counter() - t0
            rss = peak_rss_kib(joiner.pid)
        finally:
            joiner.stop()
        return secs, relay.up + relay.down, rss, up_s


def run(base: Path, *, n: int, ks: tuple[int, ...], rss_n: tuple[int, ...]) -> dict[str, Any]:
    base.mkdir(parents=True, exist_ok=True)
    fed = Federation(base / "fed", ("un", "osce"))
    un, osce = fed["un"], fed["osce"]
    log, sizes = _write_history(base, fed, n)
    import_s = _import_in_parts(base, un, log, n)
    export = base / "export.jsonl"
    export_s = _cli("log", "export", "--data", un.data, stdout=export)
    full_export = (export.stat().st_size, export_s)
    out: dict[str, Any] = {}

    # a spare copy of the empty joiner, for the catch-up runs
    spare = base / "osce-empty"
    shutil.copytree(osce.data, spare)

    un.start()
    try:
        out["cold_start"] = _cold_start(osce, un, n, import_s)
        rss_holder = peak_rss_kib(un.pid)
        out.update(_catch_ups(base, spare, osce, un, log, sizes, n=n, ks=ks, full_export=full_export))
        rss_holder = max(rss_holder, peak_rss_kib(un.pid))
    finally:
        un.stop()

    # the floor: a node with an empty store, started and asked the same
    empty = Federation(base / "empty", ("un",))
    empty["un"].start()
    try:
        floor = peak_rss_kib(empty["un"].pid)
    finally:
        empty["un"].stop()
    out[f"rss_{n}"] = {
        "what": f"peak RSS of the node holding {n} change-sets after serving the cold start and catch-ups",
        "changesets": n,
        "figure": round(rss_holder / 1024, 1),
        "unit": "MiB",
        "limit": round(floor / 1024, 1),
        "limit_what": "peak RSS of a node with an empty store",
        "ratio": round(rss_holder / floor, 2),
        "target": "<= 600 MiB at 1 000 000",
        "higher_is_better": False,
    }
    for big in rss_n:
        out[f"rss_{big}"] = rss_of_history(base / f"rss{big}", big, floor)
    return out


def _write_history(base: Path, fed: Federation, n: int) -> tuple[Path, list[int]]:
    """A history of n change-sets of ``un`` in one JSON-lines file, and the size of each envelope."""
    un = fed["un"]
    log = base / "history.jsonl"
    sizes: list[int] = []
    with open(log, "wb") as f:
        for e in chain(
            origin="un",
            key=un.nd.signing_key("k1"),
            keyid="un:k1",
            manifest=fed.manifest.version,
            count=n,
            keys=keys_for(500),
        ):
            f.write(e + b"\n")
            sizes.append(len(e))
    return log, sizes


def _import_in_parts(base: Path, un: Node, log: Path, n: int) -> float:
    """Seconds `log import` takes for the history: it caps its input (64 MiB), so a long history is
    imported in parts, their times summed."""
    import_s, part = 0.0, IMPORT_PART
    for i in range(0, n, part):
        chunk = base / f"history-{i // part}.jsonl"
        with open(log, "rb") as f, open(chunk, "wb") as o:
            for j, ln in enumerate(f):
                if i <= j < i + part:
                    o.write(ln)
        import_s += _cli("log", "import", "--data", un.data, chunk)
        chunk.unlink()
    return import_s


def _cold_start(osce: Node, un: Node, n: int, import_s: float) -> dict[str, Any]:
    """A new node pulls the whole history from ``un`` (running)."""
    secs, nbytes, rss_joiner, up_s = _pull(osce, un, un.port, n)
    return {
        "what": f"a new node pulling a history of {n} change-sets over HTTP until it holds all (default settings)",
        "changesets": n,
        "figure": round(secs, 2),
        "unit": "s",
        "bytes": nbytes,
        "of_which_process_start_s": round(up_s, 2),
        "limit": round(import_s, 2),
        "limit_what": "plain `pocsync log import` of the same log "
        "(wall time; files of 40 000 lines, under its 64 MiB input cap)",
        "ratio": round(secs / import_s, 2),
        "target": "<= 1.5x and <= 30 s at N = 100 000",
        "problems_logged": _problems(osce.log),
        "joiner_peak_rss_mib": round(rss_joiner / 1024, 1),
        "higher_is_better": False,
    }


def _catch_ups(
    base: Path,
    spare: Path,
    osce: Node,
    un: Node,
    log: Path,
    sizes: list[int],
    *,
    n: int,
    ks: tuple[int, ...],
    full_export: tuple[int, float],
) -> dict[str, Any]:
    """For each k: a joiner holding the first n - k pulls the rest from ``un`` (running).

    The joiner is one growing copy of ``spare``, extended for each smaller k."""
    from pocsync.store import Store

    export_bytes, export_s = full_export
    out: dict[str, Any] = {}
    lines = log.read_bytes().split(b"\n")
    growing = base / "osce-growing"
    shutil.copytree(spare, growing)
    held = 0
    for k in sorted((k for k in ks if k < n), reverse=True):
        with Store.open(growing / "store.sqlite") as s:
            for start in range(held, n - k, 500):
                with s.transaction():
                    for ln in lines[start : min(start + 500, n - k)]:
                        s.receive(ln, source="import")
        held = n - k
        data = base / f"osce-k{k}"
        shutil.copytree(growing, data)
        joiner = Node("osce", type(osce.nd).open(data), osce.port)
        raw = sum(sizes[n - k :])
        secs, nbytes, _, up_s = _pull(joiner, un, un.port, n)
        shutil.rmtree(data, ignore_errors=True)
        out[f"catch_up_k{k}"] = {
            "what": f"a node missing the last {k} of {n} change-sets pulls them over HTTP",
            "missed": k,
            "of": n,
            "figure": nbytes,
            "unit": "bytes on the wire (both ways)",
            "seconds": round(secs, 3),
            "of_which_process_start_s": round(up_s, 2),
            "limit": raw,
            "limit_what": "raw size of the k missed envelopes",
            "ratio": round(nbytes / raw, 2),
            "vs_full_export_bytes": round(nbytes / export_bytes, 4),
            "full_export_bytes": export_bytes,
            "full_export_seconds": round(export_s, 2),
            "seconds_vs_full_export": round(secs / export_s, 3),
            "target": "<= 1.2x raw + 4 KiB" if k <= 10 else "<= 1.4x raw",
            "higher_is_better": False,
        }
    return out


def rss_of_history(base: Path, n: int, floor_kib: int) -> dict[str, Any]:
    """Peak RSS of a node started on a store of n change-sets, then asked for one full catch-up batch."""
    base.mkdir(parents=True, exist_ok=True)
    fed = Federation(base / "fed", ("un", "osce"))
    un = fed["un"]
    from pocsync.store import Store

    with Store.open(un.nd.config.store_path) as s:
        batch: list[bytes] = []
        for e in chain(
            origin="un",
            key=un.nd.signing_key("k1"),
            keyid="un:k1",
            manifest=fed.manifest.version,
            count=n,
            keys=keys_for(500),
        ):
            batch.append(e)
            if len(batch) == 2000:
                with s.transaction():
                    for x in batch:
                        s.receive(x, source="import")
                batch = []
        with s.transaction():
            for x in batch:
                s.receive(x, source="import")
    un.start()
    try:
        joiner = fed["osce"]
        with CountingRelay(un.port) as relay:
            joiner.set_sync(peers=[relay.url], discover_peers=False)
            try:
                joiner.start()
                wait_for(lambda: _head(joiner.nd.config.store_path, "un") >= min(n, 1000), 600, "a first batch")
            finally:
                joiner.stop()
        rss = peak_rss_kib(un.pid)
    finally:
        un.stop()
    return {
        "what": f"peak RSS of a node holding {n} change-sets (started, serving a first catch-up)",
        "changesets": n,
        "figure": round(rss / 1024, 1),
        "unit": "MiB",
        "limit": round(floor_kib / 1024, 1),
        "limit_what": "peak RSS of a node with an empty store",
        "ratio": round(rss / floor_kib, 2),
        "target": "<= 600 MiB at 1 000 000",
        "higher_is_better": False,
    }
