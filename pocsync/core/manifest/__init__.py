"""The federation manifest: the trust root (PROTOCOL.md §6).

A manifest is a DSSE envelope (payloadType ``application/vnd.pocsync.manifest+json``)
whose payload lists the root keys, the signature threshold, the expiry and every
member node with its keys and scope.  It is signed by root keys; a threshold of
them is needed.

History is anchored to log positions, not clocks: every signing key is valid for
a range of its node's sequence numbers, a scope change takes effect at a stated
seq, removing a node freezes it at a stated seq, and a chain restart starts a new
segment of the node's chain at a stated seq.  Later versions keep that history, so
every node judges every change-set the same way whatever version it held when
the change-set arrived.

Transition rule (TUF-like): version N+1 is accepted only when signed by a
threshold of N's roots *and* a threshold of N+1's roots; versions never go back.

The package: :mod:`.model` (nodes, keys, scope, segments), :mod:`.parsing` (envelope to model),
:mod:`.rules` (root signatures, the install transition) and :mod:`.editing` (payload edits, signing);
every public name is re-exported here (``from pocsync.core import manifest as mf``).
"""

from __future__ import annotations

from pocsync.core.keys import root_keyid  # callers use mf.root_keyid
from pocsync.core.manifest.editing import (
    add_node,
    add_root,
    new_payload,
    next_version,
    parse_scope,
    remove_node,
    remove_root,
    restart_chain,
    rotate_key,
    set_expiry,
    set_features,
    set_policy,
    set_scope,
    set_threshold,
    sign,
    sign_as_previous_root,
    unsigned,
)
from pocsync.core.manifest.model import (
    ALL,
    EXPIRY_FMT,
    KEY_NAME_RE,
    MANIFEST_PAYLOAD,
    NODE_ID_RE,
    ROLES,
    STATE_RE,
    Manifest,
    NodeInfo,
    Restart,
    ScopeStep,
    SigningKey,
    format_time,
    parse_time,
)
from pocsync.core.manifest.parsing import from_payload, parse
from pocsync.core.manifest.rules import check_install, check_self_signed, signed_by
from pocsync.errors import (  # callers catch mf.ManifestRollbackError and the like
    ManifestError,
    ManifestExpiredError,
    ManifestGapError,
    ManifestRollbackError,
    ManifestThresholdError,
)

__all__ = [
    "ManifestError",
    "ManifestExpiredError",
    "ManifestGapError",
    "ManifestRollbackError",
    "ManifestThresholdError",
    "root_keyid",
    "ALL",
    "EXPIRY_FMT",
    "KEY_NAME_RE",
    "MANIFEST_PAYLOAD",
    "Manifest",
    "NODE_ID_RE",
    "NodeInfo",
    "ROLES",
    "Restart",
    "STATE_RE",
    "ScopeStep",
    "SigningKey",
    "add_node",
    "add_root",
    "check_install",
    "check_self_signed",
    "format_time",
    "from_payload",
    "new_payload",
    "next_version",
    "parse",
    "parse_scope",
    "parse_time",
    "remove_node",
    "remove_root",
    "restart_chain",
    "rotate_key",
    "set_expiry",
    "set_features",
    "set_policy",
    "set_scope",
    "set_threshold",
    "sign",
    "sign_as_previous_root",
    "signed_by",
    "unsigned",
]
