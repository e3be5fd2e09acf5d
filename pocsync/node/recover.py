"""``pocsync recover``: rebuild a node's store from a peer (docs/ARCHITECTURE.md §4; SECURITY.md: a crash loses no acknowledged edit).

When the store is missing it is created; the manifest chain is fetched from the peer, version 1
first, and installed by the usual rules — and it must list this node with the signing key this
node holds, or recovery stops.  Then every origin's change-sets, this node's own included, are
pulled by the ordinary acceptance rules.  After recovery the node's own head is what peers hold,
so it never signs a seq it signed before (unless a change-set it signed never left it: then the
root must declare a chain restart).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from pocsync.core.keys import ed25519_public_b64
from pocsync.errors import ManifestError, NotInitialised, TransportError
from pocsync.folder.nodedir import NodeDir
from pocsync.live.runtime import PeerStatus, Runtime
from pocsync.live.worker import StoreWorker
from pocsync.store import Store
from pocsync.transport.http import PeerClient


async def _recover(nd: NodeDir, peer: str) -> dict[str, Any]:
    path = nd.config.store_path
    created = False
    if not path.exists():
        Store.create(path, node_id=nd.node_id, limits=nd.config.limits.core()).close()
        created = True
    worker = StoreWorker(path, limits=nd.config.limits.core())
    await worker.start()
    try:
        rt = Runtime(nd=nd, worker=worker)
        timeout = aiohttp.ClientTimeout(total=nd.config.sync.http_timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(ssl=nd.peer_ssl())) as session:
            client = PeerClient(rt, session)
            target, theirs = await client.identify(peer)
            current = await worker.run(Store.manifest)
            async for m in client.manifests(peer, 0 if current is None else current.version, theirs):
                node = m.node(nd.node_id)
                held = {ed25519_public_b64(nd.signing_key(n)) for n in nd.signing_key_names()}
                if node is None or not held & {ed25519_public_b64(k.public) for k in node.signing_keys}:
                    raise ManifestError(
                        f"manifest v{m.version} from {peer} does not list {nd.node_id} with this"
                        " node's keys; refusing to recover from it",
                        reason="foreign_manifest",
                    )
                await worker.run(lambda s, m=m: s.install_manifest(m))
            if await worker.run(Store.manifest) is None:
                raise NotInitialised(f"{peer} served no manifest")
            before = (await worker.run(Store.summary))["heads"].get(nd.node_id)
            rt.peers[peer] = PeerStatus(peer)
            accepted = await client.pull(peer)
            # What the signing guard's message promises `recover` clears: our own change-sets that wait for
            # a predecessor are retried now that the log is complete, and unverifiable items that merely
            # claim to be ours are dropped (they never blocked signing; issue 11, case 1).
            dropped = await worker.run(lambda s: s.drop_unverified_parked(nd.node_id))
            await worker.run(Store.forget_announced_own)  # a claim the pull did not prove is dropped too
            await worker.run(lambda s: s.retry_parked())
            after = (await worker.run(Store.summary))["heads"].get(nd.node_id)
            blocked = await worker.run(Store.signing_blocked)
            return {
                "peer": target,
                "created": created,
                "accepted": accepted,
                "own_head_before": before[0] if before else 0,
                "own_head_after": after[0] if after else 0,
                "signing_blocked": blocked,
                "dropped_unverified": dropped,
            }
    finally:
        await worker.close()


def recover(nd: NodeDir, peer: str) -> dict[str, Any]:
    """Rebuild the store from ``peer``; a peer that cannot be reached is a TransportError (reason ``unreachable``)."""
    try:
        return asyncio.run(_recover(nd, peer))
    except TransportError as exc:
        raise TransportError(f"cannot recover from {peer}: {exc.message}", reason="unreachable") from exc
