"""HTTP pull: catch-up and anti-entropy by head vectors (PROTOCOL.md §13.2).

For each peer: learn its id and manifest version (walking and installing any manifest versions
this node lacks), fetch its signed head vector, then fetch only what is missing — per origin the
change-sets after this node's head — plus any equivocation proof it holds that this node lacks.
Every response body is capped before it is read.  What aiohttp, the socket or a timeout raise is wrapped
here, where it enters, into :class:`pocsync.errors.FetchError`: callers catch ``PocsyncError`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any
from urllib.parse import urlencode

import aiohttp
import aiohttp.web

from pocsync.core import changeset as csmod
from pocsync.core import heads as headsmod
from pocsync.core import jsonc
from pocsync.core import manifest as mf
from pocsync.core.peerauth import sign_request
from pocsync.errors import FetchError, ManifestError, PocsyncError, ProtocolError
from pocsync.live.runtime import PeerStatus, Runtime, event, now_ms

MANIFEST_CAP = 1 << 20
#: what the network raises under aiohttp (connection refused or reset, TLS, a cut body, a timeout)
NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def why(exc: BaseException) -> str:
    """``Type: message`` of a third-party error (a timeout has no message): the reason operators read."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def sealed_batch_cap(max_batch_bytes: int) -> int:
    """Cap on a sealed batch: ``max_batch_bytes`` of envelopes grow by JSON escaping and by the
    base64 of sealing (about 1.4×), so twice that plus 1 MiB."""
    return 2 * max_batch_bytes + (1 << 20)


def _last_seq(envs: list[bytes]) -> int | None:
    """The seq the last envelope of a batch claims (untrusted: it only picks the next batch to prefetch)."""
    if not envs:
        return None
    try:
        seq = csmod.peek_identity(envs[-1], max_bytes=len(envs[-1]) + 1)[2]
    except PocsyncError:
        return None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


class PeerClient:
    def __init__(self, rt: Runtime, session: aiohttp.ClientSession) -> None:
        self.rt = rt
        self.session = session

    async def _read(self, resp: aiohttp.ClientResponse, cap: int) -> bytes:
        if resp.content_length is not None and resp.content_length > cap:
            raise ProtocolError(f"response of {resp.content_length} bytes exceeds the cap of {cap}", reason="oversize")
        # ``content.read(n)`` returns what is buffered so far, not n bytes: read chunks until EOF,
        # refusing as soon as the body passes the cap (issue 9: batches over ~100 KB were cut).
        buf = bytearray()
        async for chunk in resp.content.iter_any():
            buf += chunk
            if len(buf) > cap:
                raise ProtocolError(f"response exceeds the cap of {cap} bytes", reason="oversize")
        return bytes(buf)

    async def _get(
        self, url: str, path: str, *, target: str | None, cap: int, method: str = "GET", body: bytes = b""
    ) -> bytes:
        headers = {}
        if target is not None:
            m = await self.rt.manifest()
            keyid, key = self.rt.signer(m)
            headers["Authorization"] = sign_request(
                node=self.rt.me,
                keyid=keyid,
                key=key,
                target=target,
                method=method,
                path=path,
                body=body,
                now_ms=now_ms(),
            )
        if body:
            headers["Content-Type"] = "application/json"
        try:
            async with self.session.request(method, url.rstrip("/") + path, headers=headers, data=body or None) as resp:
                data = await self._read(resp, cap)
                status = resp.status
        except NETWORK_ERRORS as exc:
            raise FetchError(f"{method} {path}: {why(exc)}", peer=url) from exc
        if url in self.rt.peers:
            self.rt.peers[url].bytes_received += len(data)
        if status != 200:
            raise ProtocolError(f"{method} {path} → HTTP {status}: {data[:200]!r}", reason="peer_http_error")
        return data

    async def poke(self, url: str, target: str, head_vector: bytes = b"", *, timeout: float | None = None) -> None:
        """Tell ``target`` that this node's heads or digest changed; the body is its signed head vector
        (PROTOCOL.md §13.2), so the peer learns the new digest at once and pulls only when behind.
        ``timeout`` (seconds) bounds the whole poke, signing included."""
        try:
            await asyncio.wait_for(
                self._get(url, "/v1/peer/poke", target=target, cap=4096, method="POST", body=head_vector), timeout
            )
        except TimeoutError as exc:
            raise FetchError(f"POST /v1/peer/poke: {why(exc)}", peer=url) from exc
        self.rt.contact(target, via="http")

    async def identify(self, url: str) -> tuple[str, int]:
        info = jsonc.loads(await self._get(url, "/v1/node", target=None, cap=4096))
        if (
            not isinstance(info, dict)
            or not isinstance(info.get("node"), str)
            or not isinstance(info.get("manifest"), int)
        ):
            raise ProtocolError("peer /v1/node answer is malformed", reason="bad_peer")
        return info["node"], info["manifest"]

    async def manifests(self, url: str, after: int, until: int) -> AsyncIterator[mf.Manifest]:
        """The manifest walk: the peer's versions ``after + 1`` to ``until`` in order, each parsed (no trust
        decision: the caller installs it by the usual rules) and checked to be the version asked for."""
        for v in range(after + 1, until + 1):
            data = await self._get(url, f"/v1/manifest/{v}", target=None, cap=MANIFEST_CAP)
            m = mf.parse(data, max_bytes=MANIFEST_CAP)
            if m.version != v:
                raise ProtocolError(f"peer served v{m.version} for v{v}", reason="bad_peer")
            yield m

    async def catch_up_manifests(self, url: str, theirs: int) -> int:
        """Fetch and install every manifest version between ours and ``theirs``; returns how many."""
        installed = 0
        async for m in self.manifests(url, (await self.rt.manifest()).version, theirs):
            await self.rt.install_manifest(m, via=f"http:{url}")
            installed += 1
        return installed

    async def pull(self, url: str) -> int:
        """One anti-entropy round with the peer at ``url``; returns change-sets accepted.

        A failure is recorded against the peer (its node goes offline in health) and sets a retry
        backoff, doubling from 1 s up to the pull interval, so a failing peer is not hammered."""
        st = self.rt.peers.setdefault(url, PeerStatus(url))
        return await self._accounted(st, self._pull(url, st))

    async def pull_announced(self, url: str, hv: headsmod.HeadVector) -> int:
        """Fetch from the peer at ``url`` what its poke announced (issue 13): the poke carried its signed
        head vector, already verified against the manifest (``api/peer.py:poke``) and recorded
        (``Runtime.on_head_vector``), so the identify and heads round trips of a full pull are skipped —
        one signed batch request per origin this node is behind on.  Accounted like :meth:`pull`."""
        st = self.rt.peers.setdefault(url, PeerStatus(url))
        st.node = hv.node
        return await self._accounted(st, self._fetch_behind(url, hv.node, hv, st))

    async def _accounted(self, st: PeerStatus, work: Coroutine[Any, Any, int]) -> int:
        rt = self.rt
        t0 = time.perf_counter()
        try:
            accepted = await work
            rt.pull_durations.append(time.perf_counter() - t0)
        except PocsyncError as exc:  # the network's errors arrive as FetchError (see _get)
            st.last_error = f"{type(exc).__name__}: {exc}"
            st.last_error_at = time.time()
            st.failures += 1
            st.retry_at = time.monotonic() + min(2.0 ** (st.failures - 1), float(rt.cfg.sync.pull_interval_seconds))
            rt.counters["pull_errors"] += 1
            node = st.node or rt.url_nodes.get(st.url)
            if node is not None:
                rt.contact_failed(node, st.last_error)
            raise
        st.last_pull_ok = time.time()
        st.last_error = None
        st.failures, st.retry_at = 0, 0.0
        st.pulls += 1
        return accepted

    async def _pull(self, url: str, st: PeerStatus) -> int:
        rt = self.rt
        target, their_manifest = await self.identify(url)
        st.node = target
        if target == rt.me:
            return 0
        if their_manifest > (await rt.manifest()).version:
            try:
                await self.catch_up_manifests(url, their_manifest)
            except ManifestError as exc:  # a feature this software lacks (PROTOCOL.md §8.3): keep syncing
                if exc.reason != "unsupported_feature":  # counted and shown by rt.install_manifest
                    raise
        m = await rt.manifest()
        hv = headsmod.verify(await self._get(url, "/v1/peer/heads", target=target, cap=1 << 20), m)
        if hv.node != target:
            raise ProtocolError(f"{url} answered heads of {hv.node}, expected {target}", reason="bad_peer")
        rt.contact(target, hv, via="http")
        await rt.note_confirmation(hv)
        return await self._fetch_behind(url, target, hv, st)

    async def _fetch_behind(self, url: str, target: str, hv: headsmod.HeadVector, st: PeerStatus) -> int:
        """Fetch every origin on which ``hv`` (the peer's verified head vector) is ahead of this node or
        forks from it, and any equivocation proof it holds that this node lacks."""
        rt = self.rt
        mine = (await rt.summary())["heads"]
        # a head vector naming other origins must not make this node send a request per name (attack on ADR 43)
        theirs = headsmod.of_members(hv.heads, (await rt.manifest()).nodes)
        accepted = 0
        for origin, state in headsmod.compare(mine, theirs).items():
            if state == "behind":
                accepted += await self._fetch(url, target, origin, theirs[origin][0], st)
            elif state == "fork":
                accepted += await self._fetch_one(url, target, origin, mine[origin][0], st)
        held = {(o, s) for o, s in (await rt.summary())["equivocations"]}
        if any(e not in held for e in hv.equivocations):
            await self._fetch_proofs(url, target)
        await rt.worker.run(lambda s: s.retry_parked(reason="clock_skew"))
        return accepted

    async def _batch(self, url: str, target: str, origin: str, after: int, limit: int) -> tuple[list[bytes], bool]:
        rt = self.rt
        path = "/v1/peer/changesets?" + urlencode({"origin": origin, "after": after, "limit": limit})
        blob = await self._get(url, path, target=target, cap=sealed_batch_cap(rt.cfg.sync.max_batch_bytes))
        opened = rt.open(blob, context="http:/v1/peer/changesets")
        if opened.sender != target:
            raise ProtocolError("sealed batch from another sender", reason="bad_peer")
        batch = jsonc.loads(opened.plaintext)
        envs = batch.get("changesets") if isinstance(batch, dict) else None
        if not isinstance(envs, list) or batch.get("origin") != origin:
            raise ProtocolError("malformed change-set batch", reason="bad_peer")
        return [e.encode() for e in envs if isinstance(e, str)], bool(batch.get("more"))

    async def _own_head(self, origin: str) -> int:
        heads = await self.rt.worker.run(lambda s: s.heads())
        return heads[origin].seq if origin in heads else 0

    async def _fetch(self, url: str, target: str, origin: str, until: int, st: PeerStatus) -> int:
        """Fetch ``origin``'s change-sets after this node's head up to the peer's ``until``, batch by batch.

        Each batch starts after the head this node holds *now* (what MQTT delivered meanwhile is not
        fetched again); a failed batch halves the batch size asked of this peer, so the retry does
        not fetch the whole batch again; success doubles it back up to ``max_batch``.
        """
        rt = self.rt
        accepted = 0
        full = rt.cfg.sync.max_batch
        # (after, the next batch being fetched while one applies)
        ahead: tuple[int, asyncio.Task[tuple[list[bytes], bool]]] | None = None
        try:
            while True:
                after = await self._own_head(origin)
                if after >= until:
                    return accepted
                n = min(st.batch or full, full)
                try:
                    if ahead is not None and ahead[0] == after:
                        envs, more = await ahead[1]
                    else:
                        envs, more = await self._batch(url, target, origin, after, n)
                except PocsyncError:
                    st.batch = max(1, n // 2)
                    raise
                finally:
                    if ahead is not None and not ahead[1].done():
                        ahead[1].cancel()
                    elif ahead is not None and not ahead[1].cancelled():
                        ahead[1].exception()  # a prefetch that failed and was not used: its error is retrieved here
                    ahead = None
                st.batch = min(full, n * 2)
                # issue 13: the next batch is fetched while this one is applied (the peer seals and sends as
                # this node verifies and commits); it is used only if this batch ends where it starts
                last = _last_seq(envs) if more else None
                if last is not None and last < until:
                    ahead = (last, asyncio.create_task(self._batch(url, target, origin, last, min(full, n * 2))))
                outs = await rt.receive_many(envs, source=f"pull:{target}")
                st.received += len(envs)
                accepted += sum((o.status == "accepted") + len(o.also_accepted) for o in outs)
                if not more or not envs or await self._own_head(origin) <= after:
                    return accepted
        finally:
            if ahead is not None:
                ahead[1].cancel()
                with contextlib.suppress(BaseException):
                    await ahead[1]

    async def _fetch_one(self, url: str, target: str, origin: str, seq: int, st: PeerStatus) -> int:
        """The peer holds another change-set at ``seq``: fetch that one (an equivocation proof results)."""
        envs, _ = await self._batch(url, target, origin, seq - 1, 1)
        outs = await self.rt.receive_many(envs, source=f"pull:{target}")
        st.received += len(envs)
        return sum((o.status == "accepted") + len(o.also_accepted) for o in outs)

    async def _fetch_proofs(self, url: str, target: str) -> None:
        rt = self.rt
        blob = await self._get(url, "/v1/peer/proofs", target=target, cap=sealed_batch_cap(rt.cfg.sync.max_batch_bytes))
        doc = jsonc.loads(rt.open(blob, context="http:/v1/peer/proofs").plaintext)
        items = doc.get("proofs") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise FetchError(f'{target}: /v1/peer/proofs did not answer {{"proofs": [...]}}', reason="bad_peer")
        for p in items:
            try:
                await rt.worker.run(lambda s, p=p: s.add_proof(p["origin"], p["seq"], p["a"].encode(), p["b"].encode()))
                rt.counters["proofs_learned"] += 1
                event(
                    "proof_learned",
                    "equivocation proof for %s seq %s learned from %s",
                    p["origin"],
                    p["seq"],
                    target,
                    origin=p["origin"],
                    seq=p["seq"],
                    source=target,
                )
            except (PocsyncError, KeyError, TypeError, AttributeError):
                rt.counters["proofs_rejected"] += 1


#: the daemon's peer client (aiohttp application key)
CLIENT = aiohttp.web.AppKey("peer_client", PeerClient)
