"""HTTP pull: catch-up and anti-entropy by head vectors (PROTOCOL.md §13.2).

For each peer: learn its id and manifest version (walking and installing any manifest versions
this node lacks), fetch its signed head vector, then fetch only what is missing — per origin the
change-sets after this node's head — plus any equivocation proof it holds that this node lacks.
Every response body is capped before it is read.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import aiohttp

from pocsync.core import changeset as csmod
from pocsync.core import heads as headsmod
from pocsync.core import jsonc
from pocsync.core import manifest as mf
from pocsync.core.hlc import HLC
from pocsync.core.peerauth import sign_request
from pocsync.errors import PocsyncError, ProtocolError
from pocsync.node.runtime import PeerStatus, Runtime, now_ms
from pocsync.store import Store

MANIFEST_CAP = 1 << 20


class PeerClient:
    def __init__(self, rt: Runtime, session: aiohttp.ClientSession) -> None:
        self.rt = rt
        self.session = session

    async def _read(self, resp: aiohttp.ClientResponse, cap: int) -> bytes:
        if resp.content_length is not None and resp.content_length > cap:
            raise ProtocolError(f"response of {resp.content_length} bytes exceeds the cap of {cap}", reason="oversize")
        # read(n) returns as soon as some bytes are there (aiohttp docs): loop to the end or past the cap
        chunks: list[bytes] = []
        total = 0
        while total <= cap:
            chunk = await resp.content.read(cap + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > cap:
            raise ProtocolError(f"response exceeds the cap of {cap} bytes", reason="oversize")
        return b"".join(chunks)

    async def _get(self, url: str, path: str, *, target: str | None, cap: int, method: str = "GET") -> bytes:
        headers = {}
        if target is not None:
            m = await self.rt.manifest()
            keyid, key = self.rt.signer(m)
            headers["Authorization"] = sign_request(node=self.rt.me, keyid=keyid, key=key, target=target,
                                                    method=method, path=path, body=b"", now_ms=now_ms())
        async with self.session.request(method, url.rstrip("/") + path, headers=headers) as resp:
            body = await self._read(resp, cap)
            if url in self.rt.peers:
                self.rt.peers[url].bytes_received += len(body)
            if resp.status != 200:
                raise ProtocolError(f"{method} {path} → HTTP {resp.status}: {body[:200]!r}", reason="peer_http_error")
            return body

    async def poke(self, url: str, target: str) -> None:
        await self._get(url, "/v1/peer/poke", target=target, cap=4096, method="POST")

    async def identify(self, url: str) -> tuple[str, int]:
        info = jsonc.loads(await self._get(url, "/v1/node", target=None, cap=4096))
        if not isinstance(info, dict) or not isinstance(info.get("node"), str) or not isinstance(info.get("manifest"), int):
            raise ProtocolError("peer /v1/node answer is malformed", reason="bad_peer")
        return info["node"], info["manifest"]

    async def catch_up_manifests(self, url: str, theirs: int) -> int:
        """Fetch and install every manifest version between ours and ``theirs``; returns how many."""
        mine = (await self.rt.manifest()).version
        installed = 0
        for v in range(mine + 1, theirs + 1):
            data = await self._get(url, f"/v1/manifest/{v}", target=None, cap=MANIFEST_CAP)
            m = mf.parse(data, max_bytes=MANIFEST_CAP)
            if m.version != v:
                raise ProtocolError(f"peer served v{m.version} for v{v}", reason="bad_peer")
            await self.rt.worker.run(lambda s: s.install_manifest(m))
            installed += 1
            self.rt.counters["manifests_installed"] += 1
        return installed

    async def pull(self, url: str) -> int:
        """One anti-entropy round with the peer at ``url``; returns change-sets accepted."""
        st = self.rt.peers.setdefault(url, PeerStatus(url))
        t0 = time.perf_counter()
        try:
            accepted = await self._pull(url, st)
            self.rt.pull_durations.append(time.perf_counter() - t0)
        except (PocsyncError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            st.last_error = f"{type(exc).__name__}: {exc}"
            st.last_error_at = time.time()
            self.rt.counters["pull_errors"] += 1
            raise
        st.last_pull_ok = time.time()
        st.last_error = None
        st.pulls += 1
        return accepted

    async def _pull(self, url: str, st: PeerStatus) -> int:
        rt = self.rt
        target, their_manifest = await self.identify(url)
        st.node = target
        if target == rt.me:
            return 0
        if their_manifest > (await rt.manifest()).version:
            await self.catch_up_manifests(url, their_manifest)
        m = await rt.manifest()
        hv = headsmod.verify(await self._get(url, "/v1/peer/heads", target=target, cap=1 << 20), m)
        if hv.node != target:
            raise ProtocolError(f"{url} answered heads of {hv.node}, expected {target}", reason="bad_peer")
        rt.contact(target, hv)
        mine = (await rt.worker.run(Store.summary))["heads"]
        signed_ms = HLC.parse(hv.hlc).ms
        await rt.worker.run(lambda s: s.note_announced_own(hv.heads.get(rt.me, (0, ""))[0], target,
                                                           signed_ms=signed_ms))
        accepted = 0
        for origin, state in headsmod.compare(mine, hv.heads).items():
            if state == "behind":
                accepted += await self._fetch(url, target, origin, mine.get(origin, (0, ""))[0], st)
            elif state == "fork":
                accepted += await self._fetch(url, target, origin, mine[origin][0] - 1, st, limit=1)
        held = {(o, s) for o, s in (await rt.worker.run(Store.summary))["equivocations"]}
        if any(e not in held for e in hv.equivocations):
            await self._fetch_proofs(url, target)
        await rt.worker.run(lambda s: s.retry_parked(reason="clock_skew"))
        return accepted

    async def _fetch(self, url: str, target: str, origin: str, after: int, st: PeerStatus, *, limit: int = 0) -> int:
        rt = self.rt
        accepted = 0
        cap = rt.cfg.sync.max_batch_bytes + 1024 * 1024
        while True:
            n = limit or rt.cfg.sync.max_batch
            path = "/v1/peer/changesets?" + urlencode({"origin": origin, "after": after, "limit": n})
            blob = await self._get(url, path, target=target, cap=cap)
            opened = rt.open(blob, context="http:/v1/peer/changesets")
            if opened.sender != target:
                raise ProtocolError("sealed batch from another sender", reason="bad_peer")
            batch = jsonc.loads(opened.plaintext)
            envs = batch.get("changesets") if isinstance(batch, dict) else None
            if not isinstance(envs, list) or batch.get("origin") != origin:
                raise ProtocolError("malformed change-set batch", reason="bad_peer")
            last = after
            for env in envs:
                if not isinstance(env, str):
                    continue
                out = await rt.receive(env.encode(), source=f"pull:{target}")
                st.received += 1
                accepted += (out.status == "accepted") + len(out.also_accepted)
                try:
                    _, o, s = csmod.peek_identity(env.encode(), max_bytes=rt.cfg.limits.max_envelope_bytes)
                    last = max(last, s or last) if o == origin else last
                except PocsyncError:
                    pass
            if limit or not batch.get("more") or last == after:
                return accepted
            after = last

    async def _fetch_proofs(self, url: str, target: str) -> None:
        rt = self.rt
        blob = await self._get(url, "/v1/peer/proofs", target=target, cap=rt.cfg.sync.max_batch_bytes)
        items = jsonc.loads(rt.open(blob, context="http:/v1/peer/proofs").plaintext).get("proofs") or []
        for p in items:
            try:
                await rt.worker.run(lambda s, p=p: s.add_proof(p["origin"], p["seq"], p["a"].encode(),
                                                                p["b"].encode()))
                rt.counters["proofs_learned"] += 1
            except (PocsyncError, KeyError, TypeError, AttributeError):
                rt.counters["proofs_rejected"] += 1
