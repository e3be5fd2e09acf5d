"""The command registry: every command of ``pocsync``, by group, as ``name → (module:attr, short help)``.

A command's module is imported only when that command runs (or shows its own ``--help``); the groups'
``--help`` lists the short help kept here.  ``tests/unit/test_cli_registry.py`` fails when a short help
here differs from the command's own (its docstring's first sentence), so edit both together.
Importing this module costs click alone.
"""

from __future__ import annotations

import click

from pocsync.cli.group import LazyGroup, Table

#: the root's commands (the `log` group is defined in main.py, the groups below are added as they are)
ROOT: Table = {
    "adapters": (
        "pocsync.cli.import_cmd:adapters_cmd",
        "The installed adapters (entry-point group pocsync.adapters): what each reads and writes.",
    ),
    "audit": (
        "pocsync.cli.inspect_cmd:audit_cmd",
        "The audit log: every directory read and every token issued (who, what, when, result).",
    ),
    "bench": (
        "pocsync.cli.bench_cmd:bench_cmd",
        "Measure this machine: each cost next to the limit measured in the same run, as JSON.",
    ),
    "demo": (
        "pocsync.cli.demo_cmd:demo_cmd",
        "Run a whole federation here (un, eu, osce, arf) with an invented directory, shown live.",
    ),
    "digest": ("pocsync.cli.inspect_cmd:digest", "Print the view digest (sha256:<hex>) alone on one line."),
    "export": (
        "pocsync.cli.import_cmd:export_cmd",
        "Export the merged directory in a format another tool loads (or `entry import` reads back); audited.",
    ),
    "init": ("pocsync.cli.node_cmd:init", "Create a node: its keys (mode 0600), its store and DATA/sync.toml."),
    "node-info": (
        "pocsync.cli.node_cmd:node_info",
        "Print the node's public keys and URL as JSON, for `manifest add-node --node-info`.",
    ),
    "recover": (
        "pocsync.cli.node_cmd:recover_cmd",
        "Rebuild this node's store from a peer (after a lost or restored store) so it may sign again.",
    ),
    "run": (
        "pocsync.cli.node_cmd:run_cmd",
        "Run the node daemon: API server, MQTT push (if configured) and HTTP pull from peers.",
    ),
    "status": ("pocsync.cli.status_cmd:status", "Show a node's sync health."),
}

#: `pocsync keys`
KEYS: Table = {
    "new-signing": (
        "pocsync.cli.keys_cmd:new_signing",
        "Generate a new signing key for a rotation; prints its JSON for `manifest rotate-key --key-info`.",
    ),
    "root-init": ("pocsync.cli.keys_cmd:root_init", "Create an offline root key pair: OUT/root.key and OUT/root.pub."),
    "staff-init": (
        "pocsync.cli.held_cmd:staff_init",
        "Create a personal staff key pair for approving held changes (keep NAME.key off the node).",
    ),
}

#: `pocsync entry`
ENTRY: Table = {
    "approve": (
        "pocsync.cli.held_cmd:entry_approve",
        "Approve KEY's held change as a second person: it takes effect at once.",
    ),
    "confirm": (
        "pocsync.cli.check_cmd:entry_confirm",
        "Confirm entries without changing them (one signed confirm op per KEY, in one change-set).",
    ),
    "delete": ("pocsync.cli.entry_cmd:entry_delete", "Stop listing KEY at this node (other regions' listings stay)."),
    "import": (
        "pocsync.cli.import_cmd:entry_import",
        "Import a directory that exists today (FILE, - for stdin, or an ldap:// URL) as one change-set.",
    ),
    "list": ("pocsync.cli.entry_cmd:entry_list", "The merged view: one row per key, with the winning origin."),
    "object": (
        "pocsync.cli.held_cmd:entry_object",
        "Object to KEY's held change: it is cancelled everywhere and every dashboard raises an alarm.",
    ),
    "overdue": (
        "pocsync.cli.check_cmd:entry_overdue",
        "Entries overdue under the manifest's policy.freshness, on this node's clock: not confirmed within "
        "confirm_days (of their last change or confirmation), or not verified within verify_days.",
    ),
    "pending": (
        "pocsync.cli.held_cmd:entry_pending",
        "Held contact changes that have not taken effect, and when each takes effect.",
    ),
    "put": (
        "pocsync.cli.entry_cmd:entry_put",
        "Add or replace entries from FILE (one JSON entry or a JSON array), validated strictly.",
    ),
    "release": (
        "pocsync.cli.held_cmd:entry_release",
        "Release KEY's held change once another node's notice is older than the hold (the notifying node's "
        "daemon does this by itself); refused before.",
    ),
    "show": (
        "pocsync.cli.entry_cmd:entry_show",
        "One entry with its provenance (every origin's latest version) and its last_modified, last_verified "
        "and last_confirmed; all entries without KEY.",
    ),
    "withdraw": (
        "pocsync.cli.entry_cmd:entry_withdraw",
        "Record that the State withdrew KEY: it leaves the directory everywhere until a later put.",
    ),
}

#: `pocsync manifest`
MANIFEST: Table = {
    "add-node": ("pocsync.cli.manifest_edit:add_node", "Add a member node from its node-info JSON."),
    "add-root": ("pocsync.cli.manifest_edit:add_root", "Add a root key."),
    "create": (
        "pocsync.cli.manifest_edit:create",
        "Start version 1 of a manifest with the given root keys and no nodes.",
    ),
    "install": (
        "pocsync.cli.manifest_cmd:install",
        "Install FILE at the node: refuses unsigned, under-threshold, expired, skipped and rolled-back versions.",
    ),
    "next": (
        "pocsync.cli.manifest_edit:next_",
        "Write version N+1 (unsigned) to edit, starting from FILE (version N).",
    ),
    "publish": (
        "pocsync.cli.manifest_cmd:publish",
        "Publish a signed manifest, retained, on pocsync/v1/manifest; nodes install it by the rotation rules.",
    ),
    "remove-node": (
        "pocsync.cli.manifest_edit:remove_node",
        "Remove NODE: its change-sets from seq S on have no validity; nothing is sealed for it again.",
    ),
    "remove-root": ("pocsync.cli.manifest_edit:remove_root", "Remove a root key."),
    "restart-chain": (
        "pocsync.cli.manifest_edit:restart_chain",
        "Declare a chain restart of NODE at seq S with a new key (lost log, or after an equivocation).",
    ),
    "rotate-key": (
        "pocsync.cli.manifest_edit:rotate_key",
        "Give NODE a new signing key from seq S; its older keys stop at S-1 (retroactive if S is past).",
    ),
    "set-features": (
        "pocsync.cli.manifest_edit:set_features",
        "Enable exactly these features in a new version of FILE (unsigned).",
    ),
    "set-hold": ("pocsync.cli.held_cmd:manifest_set_hold", "Set policy.held-changes.hold_seconds in FILE (unsigned)."),
    "set-scope": (
        "pocsync.cli.manifest_edit:set_scope",
        "Change the States NODE may speak for, from seq S of its log.",
    ),
    "set-threshold": ("pocsync.cli.manifest_edit:set_threshold", "Change how many root signatures a version needs."),
    "show": ("pocsync.cli.manifest_cmd:show", "Show a manifest: version, expiry, roots, signatures and nodes."),
    "sign": ("pocsync.cli.manifest_cmd:sign", "Add root signatures to FILE."),
    "staff-key": (
        "pocsync.cli.held_cmd:manifest_staff_key",
        "List (or --remove) a staff public key for an origin in FILE's policy.held-changes (unsigned).",
    ),
}

#: `pocsync check`
CHECK: Table = {
    "record": (
        "pocsync.cli.check_cmd:check_record",
        "Record the result of checking one channel of KEY (e.g. a phone call) as a signed check op.",
    ),
    "start": (
        "pocsync.cli.campaign_cmd:start",
        "Start a campaign: the running node mails a check to every email channel of every entry in its scope.",
    ),
    "status": (
        "pocsync.cli.campaign_cmd:status",
        "Each campaign's counts: mailed, acknowledged, no response, bounced, skipped; response times.",
    ),
}

#: `pocsync quarantine`
QUARANTINE: Table = {
    "list": (
        "pocsync.cli.inspect_cmd:quarantine_list",
        "Quarantined change-sets, refused ops, parked change-sets and equivocation proofs, with reasons.",
    )
}

#: `pocsync history`
HISTORY: Table = {
    "bundle": (
        "pocsync.cli.history_cmd:bundle",
        "Write STATE's history with the signed change-sets and manifests that prove it (PROTOCOL.md §17.2).",
    ),
    "show": (
        "pocsync.cli.history_cmd:show",
        "Every op on STATE's keys (any origin), with refusals and the fields each op changed.",
    ),
}

#: `pocsync snapshot`
SNAPSHOT: Table = {
    "create": (
        "pocsync.cli.snapshot_cmd:create",
        "Write a snapshot of the merged view, signed by this node, encrypted with age.",
    ),
    "keygen": (
        "pocsync.cli.snapshot_cmd:keygen",
        "Make an age identity for receiving snapshots; prints its public key (age1…) for --recipient.",
    ),
    "render": (
        "pocsync.cli.snapshot_cmd:render",
        "Write a self-contained printable page listing every PoC by State (no script, no outside asset).",
    ),
    "verify": (
        "pocsync.cli.snapshot_cmd:verify",
        "Check a snapshot offline against the federation's root key and print its age.",
    ),
}

#: `pocsync template`
TEMPLATE: Table = {
    "list": (
        "pocsync.cli.template_cmd:template_list",
        "The templates this node holds (the effective version of each).",
    ),
    "publish": (
        "pocsync.cli.template_cmd:template_publish",
        "Sign the template document(s) in FILE... as one change-set (or every shipped one with --shipped).",
    ),
    "publishers": (
        "pocsync.cli.template_cmd:template_publishers",
        "Set which nodes may publish templates in a new version of manifest FILE (unsigned).",
    ),
    "show": (
        "pocsync.cli.template_cmd:template_show",
        "One template (JSON): the document, the publishing node and its hlc.",
    ),
}

#: `pocsync token`
TOKEN: Table = {
    "issue": (
        "pocsync.cli.token_cmd:issue",
        "Issue a token signed by this node's token key and print it alone on stdout (or mail it: --send).",
    )
}


def _group(name: str, table: Table, help_: str) -> LazyGroup:
    return LazyGroup(name, lazy=table, help=help_)


keys = _group("keys", KEYS, "Generate keys: the offline root key, and new node signing keys.")
entry = _group("entry", ENTRY, "Edit and read this node's entries.  Each edit is one signed change-set.")
manifest = _group(
    "manifest", MANIFEST, "Create, edit, sign, show and install the federation manifest (the trust root)."
)
check = _group(
    "check", CHECK, "Communication checks: record results; each is a signed fact every node shows (PROTOCOL.md §15)."
)
quarantine = _group("quarantine", QUARANTINE, "What this node did not apply, and why.")
history = _group(
    "history", HISTORY, "A State's audit trail: every op on its keys from every directory, applied or refused."
)
snapshot = _group(
    "snapshot", SNAPSHOT, "Signed, encrypted snapshots of the merged view, verifiable and printable offline."
)
template = _group(
    "template", TEMPLATE, "Communication templates: signed by the UN node (or the policy's publishers), read by PoCs."
)
token = _group("token", TOKEN, "Issue tokens: PoCs read the directory, operators read health.")

#: the groups of the root (besides `log`, in main.py)
GROUPS: tuple[click.Group, ...] = (keys, entry, manifest, check, quarantine, history, snapshot, template, token)
