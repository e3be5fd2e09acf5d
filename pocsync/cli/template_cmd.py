"""``pocsync template``: publish, list and show communication templates (issue 17, PROTOCOL.md §18).

A template is signed as a ``template`` op in this node's next change-set; only a publisher node may sign
one (``policy.templates.publishers``, by default the nodes with role ``un``), and the node refuses,
before signing, every template its peers would refuse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pocsync.cli.common import data_option, json_option, no_peer_check_option, print_json, read_input, table
from pocsync.cli.signing import author_of, sign_ops
from pocsync.core import jsonc
from pocsync.core import templates as tpl
from pocsync.directory.shipped_templates import paths as shipped_paths
from pocsync.errors import EntryError, MalformedJSON
from pocsync.folder.nodedir import NodeDir
from pocsync.store.sqlite import now_ms

MAX_FILE_BYTES = 4 * tpl.MAX_DOCUMENT_BYTES  # pretty-printed files are larger than their canonical form


def _read(src: Path) -> dict[str, Any]:
    data = read_input(
        str(src),
        max_bytes=MAX_FILE_BYTES,
        limit_note=f"; a template is at most {tpl.MAX_DOCUMENT_BYTES} bytes of canonical JSON",
    )
    try:
        doc = jsonc.loads(data)
    except MalformedJSON as exc:
        raise EntryError(f"{src}: {exc.message}", reason=exc.reason) from None
    try:
        return tpl.check_document(doc)
    except EntryError as exc:
        raise EntryError(f"{src}: {exc.message}; nothing was committed", reason=exc.reason) from None


@click.command("publish")
@data_option
@no_peer_check_option
@click.argument("files", metavar="FILE...", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--shipped",
    is_flag=True,
    help="Publish every template shipped with pocsync (those not yet published at their version).",
)
@click.option("--author", default=None, help="Staff member making the edit (audit); default user@node.")
def template_publish(data: Path, files: tuple[Path, ...], shipped: bool, author: str | None) -> None:
    """Sign the template document(s) in FILE... as one change-set (or every shipped one with --shipped).

    \b
    A template document: {"id", "version", "purpose", "languages": {"en", "fr", "es", ...},
    "schema": a JSON Schema subset} (PROTOCOL.md §18; pocsync/templates/*.json are examples).
    A newer version of an id supersedes the older one everywhere.  Only a publisher node may sign
    templates; every check peers apply runs before signing, so nothing is committed when one fails.
    """
    if bool(files) == shipped:
        raise click.UsageError("give FILE... or --shipped (one of them)")
    nd = NodeDir.open(data)
    docs = [_read(p) for p in (shipped_paths() if shipped else files)]
    ids = [d["id"] for d in docs]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        raise EntryError(f"the input holds template {', '.join(dups)} more than once; nothing was committed")
    with nd.store() as store:
        current = {t["id"]: t for t in store.templates()}
        candidates = [{"op": "template", "key": d["id"], "template": d} for d in docs]
        peers_refuse = store.replica(source="local").check_ops(candidates, me=nd.node_id, now_ms=now_ms())
    if peers_refuse:  # a rule every peer applies (publisher, feature, document) is named first, by sign_ops
        sign_ops(nd, candidates, author_of(author, nd), labels=[f"template {o['key']}" for o in candidates])
        return
    ops = []
    for d in docs:
        have = current.get(d["id"])
        if have is not None and have["version"] >= d["version"]:
            same = {k: have[k] for k in tpl.DOC_MEMBERS} == d
            if shipped and same:
                continue
            raise EntryError(
                f"template {d['id']} is at version {have['version']} in the federation"
                + (" with this content already" if same else "")
                + f"; publish a version above {have['version']} — nothing was committed",
                reason="stale_version",
            )
        ops.append({"op": "template", "key": d["id"], "template": d})
    if not ops:
        click.echo("every shipped template is published at its version: nothing to do")
        return
    sign_ops(nd, ops, author_of(author, nd), labels=[f"template {o['key']}" for o in ops])


@click.command("list")
@data_option
@json_option
def template_list(data: Path, as_json: bool) -> None:
    """The templates this node holds (the effective version of each)."""
    with NodeDir.open(data).store() as store:
        rows = store.templates()
    if as_json:
        print_json(rows)
        return
    table(
        f"{len(rows)} templates",
        ["id", "version", "purpose", "languages", "title (en)", "origin", "hlc"],
        [
            [
                r["id"],
                r["version"],
                r["purpose"],
                ",".join(sorted(r["languages"])),
                r["languages"].get("en", {}).get("title"),
                r["origin"],
                r["hlc"],
            ]
            for r in rows
        ],
    )


@click.command("show")
@data_option
@click.argument("template_id", metavar="ID")
def template_show(data: Path, template_id: str) -> None:
    """One template (JSON): the document, the publishing node and its hlc."""
    if not tpl.ID_RE.match(template_id):
        raise click.BadParameter(f"a template id matches {tpl.ID_RE.pattern}", param_hint="ID")
    with NodeDir.open(data).store() as store:
        row = store.template(template_id)
    if row is None:
        raise EntryError(
            f"no template {template_id!r} at this node (`pocsync template list --data {data}`)", reason="not_found"
        )
    print_json(row)


@click.command("publishers")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--nodes", metavar="NODE,NODE,…", default=None, help="The node ids that may publish templates ('' for nobody)."
)
@click.option(
    "--default", "use_default", is_flag=True, help="Drop policy.templates.publishers: the nodes with role un publish."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the new version here instead of replacing FILE.",
)
def template_publishers(file: Path, nodes: str | None, use_default: bool, out: Path | None) -> None:
    """Set which nodes may publish templates in a new version of manifest FILE (unsigned).

    Writes policy.templates.publishers (PROTOCOL.md §18.1), like `manifest set-features`: a signed FILE
    gives version N+1, an unsigned draft is edited as it is.  Sign it with the roots, then install it."""
    from pocsync.cli.manifest_io import load, save
    from pocsync.core import manifest as mf

    if (nodes is None) == (not use_default):
        raise click.UsageError("give --nodes NODE,… or --default (one of them)")
    m = load(file)
    if "templates" not in m.features:
        raise click.BadParameter(
            f"manifest v{m.version} does not enable feature templates; enable it first "
            "(`pocsync manifest set-features`)",
            param_hint="FILE",
        )
    value = None
    if nodes is not None:
        names = sorted({n.strip() for n in nodes.split(",") if n.strip()})
        unknown = [n for n in names if n not in m.nodes]
        if unknown:
            raise click.BadParameter(
                f"{', '.join(unknown)} is not a node of manifest v{m.version} (nodes: {', '.join(sorted(m.nodes))})",
                param_hint="--nodes",
            )
        value = {"publishers": names}
    if m.policy.get("templates") == value or (value is None and "templates" not in m.policy):
        raise click.BadParameter(f"manifest v{m.version} already says so", param_hint="--nodes")
    if out is not None and out.exists():
        raise click.UsageError(f"{out} exists; refusing to overwrite it")
    payload = mf.set_policy(mf.next_version(m.payload) if m.envelope.signatures else m.payload, "templates", value)
    target = out or file
    save(target, mf.unsigned(payload))
    who = (", ".join(value["publishers"]) or "nobody") if value is not None else "the nodes with role un (default)"
    before = m.version if m.envelope.signatures else m.version - 1
    click.echo(
        f"{target}: manifest v{payload['version']}: templates are published by {who} (unsigned; sign it "
        f"with a threshold of the roots of v{before} and v{payload['version']})"
    )
