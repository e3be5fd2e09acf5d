"""Importing a source: read it through an adapter, validate, diff against this node's own entries, commit.

Used by ``pocsync entry import`` and by the daemon's source loop (``[[sources]]``).  The rules
(ADR 6, amended):

* Every record passes :func:`pocsync.directory.intake.validate_entry` and the node's scope at the next seq
  (the rule every peer applies) before anything is signed.  An invalid record is reported by its
  source reference and field, and skipped; the valid ones go on.  With ``strict`` any invalid
  record refuses the whole import.  A key given by two records is invalid in both.
* Records the mapping does not qualify (not national-level) are skipped with the reason, and so
  are keys this node withdrew (a withdrawal is the State's word; only a hand-made put undoes it).
* The diff is minimal: a put only for a new key or an entry that differs from this node's own
  current version (``holder_epoch`` aside); a delete only with ``sync_deletes``, and only of a key
  this same source put last (its change-set id is remembered per source in the store's meta
  table, so a hand-made edit or another source's put since then is never deleted).
* One import is one change-set (or none when nothing changed).  A source where nothing valid
  remains raises :class:`~pocsync.errors.SourceError` and commits nothing (so a broken or empty
  source never wipes the directory).

Reports carry keys, field names, references and reasons only — never contact data — so the
daemon may show them in ``/v1/health``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pocsync.directory import adapters, intake
from pocsync.directory.adapters import Adapter, Mapping, Record
from pocsync.errors import EntryError, PocsyncError, SourceError
from pocsync.store import queries

META_PREFIX = "source:"


@dataclass
class Problem:
    ref: str
    field: str
    reason: str
    message: str


@dataclass
class Plan:
    source: str
    adapter: str
    records: int = 0
    puts: list[dict[str, Any]] = field(default_factory=list)  # {key, ref, change, fields, entry}
    deletes: list[dict[str, Any]] = field(default_factory=list)  # {key}
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # {ref, reason}
    invalid: list[Problem] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)  # {ref, field, message}
    present: dict[str, str] = field(default_factory=dict)  # key -> ref (valid records)
    protected: set[str] = field(default_factory=set)  # keys of invalid records
    committed: dict[str, Any] | None = None
    dry_run: bool = False

    @property
    def ops(self) -> list[dict[str, Any]]:
        return [{"op": "put", "key": p["key"], "entry": p["entry"]} for p in self.puts] + [
            {"op": "delete", "key": d["key"]} for d in self.deletes
        ]

    def report(self) -> dict[str, Any]:
        """What may be shown anywhere: counts, keys, field names, references, reasons."""
        return {
            "source": self.source,
            "adapter": self.adapter,
            "records": self.records,
            "valid": len(self.present),
            "unchanged": self.unchanged,
            "puts": [{k: p[k] for k in ("key", "ref", "change", "fields")} for p in self.puts],
            "deletes": list(self.deletes),
            "skipped": list(self.skipped),
            "invalid": [asdict(p) for p in self.invalid],
            "warnings": list(self.warnings),
            "committed": self.committed,
            "dry_run": self.dry_run,
        }


def read_records(
    adapter: Adapter, source: str, mapping: Mapping, *, data: bytes | None = None, base_dir: Path | None = None
) -> list[Record]:
    """Every record of the source (SourceError if it cannot be read at all)."""
    adapters.check_options(adapter, mapping)
    if getattr(adapter, "live", False) and data is None:
        return list(adapter.read_source(source, mapping=mapping, base_dir=base_dir))  # type: ignore[attr-defined]
    if data is None:
        path = Path(source)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            size = path.stat().st_size
            if size > adapters.MAX_SOURCE_BYTES:
                raise SourceError(f"{source}: {size} bytes, more than the {adapters.MAX_SOURCE_BYTES} an import reads")
            data = path.read_bytes()
        except OSError as exc:
            raise SourceError(f"{source}: cannot read: {exc.strerror}") from None
    if len(data) > adapters.MAX_SOURCE_BYTES:
        raise SourceError(f"{source}: more than the {adapters.MAX_SOURCE_BYTES} bytes an import reads")
    return list(adapter.read(data, mapping=mapping, source=source))


def own_state(store: Any) -> dict[str, dict[str, Any]]:
    """This node's own latest put per key: {key: {"entry": ... (no holder_epoch), "cs_id": ...}}.

    A key this node withdrew is there as ``{"withdrawn": True, ...}``: an import never re-lists it.
    """
    me = store.node_id
    out: dict[str, dict[str, Any]] = {}
    for r in queries.assertions_of(store.conn, me):
        if r["op"] == "put" and r["entry"]:
            e = json.loads(r["entry"])
            e.pop("holder_epoch", None)
            out[r["key"]] = {"entry": e, "cs_id": r["cs_id"]}
        elif r["op"] == "withdraw":
            out[r["key"]] = {"withdrawn": True, "cs_id": r["cs_id"]}
    # held contact changes (PROTOCOL.md §16): a put of this node that is held is what it said last; without this
    # a source would put it again every interval, superseding it (and restarting its notice and hold) forever
    for r in queries.held_puts_of(store.conn, me):
        e = json.loads(r["entry"])
        e.pop("holder_epoch", None)
        out[r["key"]] = {"entry": e, "cs_id": r["put_ref"].split("#")[0]}
    return out


def tracked(store: Any, source_id: str) -> dict[str, str]:
    raw = store.get_meta(META_PREFIX + source_id)
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def claimed_elsewhere(store: Any, source_id: str) -> dict[str, tuple[str, str]]:
    """{key: (other source id, change-set)} for every key another source tracks as put by it."""
    out: dict[str, tuple[str, str]] = {}
    for r in queries.meta_with_prefix(store.conn, META_PREFIX):
        other = r["key"][len(META_PREFIX) :]
        if other == source_id:
            continue
        try:
            value = json.loads(r["value"])
        except ValueError:
            continue
        if isinstance(value, dict):
            out.update({k: (other, str(cs)) for k, cs in value.items()})
    return out


def scope_check(store: Any) -> Callable[[str], bool]:
    """Whether this node may sign an op on a State at its next seq (the rule peers apply)."""
    m = store.manifest()
    me = store.node_id
    if m is None or me not in m.nodes:
        return lambda state: True  # signing will refuse with its own clear message
    seq, _ = store.replica().next_position(me)
    node = m.nodes[me]
    return lambda state: node.covers(state, seq)


def plan(
    records: Iterable[Record],
    mapping: Mapping,
    *,
    source: str,
    adapter: str,
    own: dict[str, dict[str, Any]],
    tracked_keys: dict[str, str],
    sync_deletes: bool,
    in_scope: Callable[[str], bool],
    today_iso: str | None = None,
    tick: Callable[[], None] | None = None,
    elsewhere: dict[str, tuple[str, str]] | None = None,
) -> Plan:
    """The minimal diff between the source and this node's own entries (pure: no I/O).

    ``elsewhere`` (from :func:`claimed_elsewhere`): a put over an entry another source put last is
    warned about — two sources giving one key replace each other's version at every run."""
    today = today_iso or datetime.now(UTC).date().isoformat()
    p = Plan(source=source, adapter=adapter)
    clean_by_key = _validated(p, records, mapping, in_scope=in_scope, today=today, tick=tick)
    for key, items in sorted(clean_by_key.items()):
        if len(items) > 1:
            refs = ", ".join(r for r, _ in items)
            for ref, _ in items:
                p.invalid.append(
                    Problem(ref, "key", "duplicate_key", f"record {ref}: {key} is given by records {refs}")
                )
            p.protected.add(key)
            continue
        ref, clean = items[0]
        _diff_one(p, key, ref, clean, own.get(key), (elsewhere or {}).get(key))
    if sync_deletes:
        _plan_deletes(p, own, tracked_keys)
    return p


def _validated(
    p: Plan,
    records: Iterable[Record],
    mapping: Mapping,
    *,
    in_scope: Callable[[str], bool],
    today: str,
    tick: Callable[[], None] | None,
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Map and validate each record: the clean entries by key (invalid and skipped ones noted in ``p``)."""
    clean_by_key: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for rec in records:
        p.records += 1
        try:
            mapped = adapters.map_record(rec, mapping)
            if isinstance(mapped, str):
                p.skipped.append({"ref": rec.ref, "reason": mapped})
                continue
            clean, warns = intake.validate_entry(mapped, record=rec.ref, today_iso=today)
            if not in_scope(clean["state"]):
                raise EntryError(
                    f'record {rec.ref} ({intake.entry_key(clean)}): field "state": {clean["state"]} '
                    "is outside this node's scope in the manifest",
                    reason="out_of_scope",
                    field="state",
                    record=rec.ref,
                )
        except EntryError as exc:
            p.invalid.append(Problem(rec.ref, str(exc.detail.get("field", "entry")), exc.reason, exc.message))
            key = exc.detail.get("key")
            if isinstance(key, str) and "?" not in key:
                p.protected.add(key)
            continue
        finally:
            if tick is not None:
                tick()
        for w in warns:
            p.warnings.append({"ref": rec.ref, "field": w["field"], "message": w["message"]})
        clean_by_key.setdefault(intake.entry_key(clean), []).append((rec.ref, clean))
    return clean_by_key


def _diff_one(
    p: Plan, key: str, ref: str, clean: dict[str, Any], mine: dict[str, Any] | None, other: tuple[str, str] | None
) -> None:
    """Plan one valid record against this node's own entry of its key: skip, unchanged or put."""
    if mine is not None and mine.get("withdrawn"):
        p.skipped.append(
            {"ref": ref, "reason": f"{key} was withdrawn by the State at this node; `entry put` lists it again"}
        )
        p.protected.add(key)
        return
    p.present[key] = ref
    if mine is not None and mine["entry"] == clean:
        p.unchanged += 1
        return
    fields = sorted(set(clean) | set(mine["entry"])) if mine else []
    changed = [f for f in fields if (mine["entry"].get(f) if mine else None) != clean.get(f)]
    p.puts.append({"key": key, "ref": ref, "change": "changed" if mine else "new", "fields": changed, "entry": clean})
    if mine is not None and other is not None and other[1] == mine["cs_id"]:
        p.warnings.append(
            {
                "ref": ref,
                "field": "key",
                "message": (
                    f"{key} was last put by source {other[0]}; this import replaces its version, and the two "
                    "sources will replace each other's at every run: keep each key in one source"
                ),
            }
        )


def _plan_deletes(p: Plan, own: dict[str, dict[str, Any]], tracked_keys: dict[str, str]) -> None:
    """Delete the keys this source put before that it no longer gives (and nobody changed since)."""
    for key, cs_id in sorted(tracked_keys.items()):
        mine = own.get(key)
        if key in p.present or key in p.protected or mine is None or mine.get("withdrawn") or mine["cs_id"] != cs_id:
            continue  # still in the source, unreadable this time, already gone, or changed by someone else
        p.deletes.append({"key": key})


def check_plan(p: Plan, *, strict: bool) -> None:
    """Raise (nothing is committed) when the import must not go ahead."""
    exc: PocsyncError | None = None
    if not p.present:
        what = f"{len(p.invalid)} invalid, {len(p.skipped)} skipped" if p.records else "no record"
        exc = SourceError(
            f"{p.source}: nothing valid to import ({p.records} record(s): {what}); nothing was committed",
            reason="nothing_valid",
        )
    elif strict and p.invalid:
        exc = EntryError(
            f"{len(p.invalid)} of {p.records} record(s) invalid and --strict given; nothing was committed",
            reason="strict",
        )
    if exc is not None:
        exc.plan = p  # type: ignore[attr-defined]  # so the caller can still show what was wrong
        raise exc


def commit(store: Any, key: Any, p: Plan, *, author: str) -> Any:
    """Sign the plan's ops as one change-set and remember which keys this source put (one transaction)."""
    old = tracked(store, p.source)
    with store.transaction():
        out = None
        if p.ops:
            out = store.edit(p.ops, key=key, author=author)
            refused = {r.key for r in out.refused}
            p.committed = {"seq": out.seq, "cs_id": out.cs_id, "ops": len(p.ops), "refused": len(out.refused)}
        new = {k: v for k, v in old.items() if k not in {d["key"] for d in p.deletes}}
        if out is not None:
            for put in p.puts:
                if put["key"] not in refused:
                    new[put["key"]] = out.cs_id
        # An unchanged key is never adopted: when the node's version was written by a hand-made put or
        # another source, this source did not put it, so --sync-deletes must never delete it.
        store.set_meta(META_PREFIX + p.source, json.dumps(new, sort_keys=True))
    return out


def import_source(
    nd: Any,
    adapter_name: str,
    source: str,
    *,
    mapping: Mapping | None,
    source_id: str,
    author: str,
    sync_deletes: bool = False,
    strict: bool = False,
    dry_run: bool = False,
    data: bytes | None = None,
    base_dir: Path | None = None,
    progress: Callable[[int], Callable[[], None]] | None = None,
    before_signing: Callable[[Any], None] | None = None,
) -> tuple[Plan, Any]:
    """Read, plan, check and (unless ``dry_run``) commit. Returns (plan, edit outcome or None).
    ``before_signing(store)`` runs only when there is something to sign (the CLI's signing guard)."""
    adapter = adapters.load(adapter_name)
    m = adapter.default_mapping.merged(mapping)
    records = read_records(adapter, source, m, data=data, base_dir=base_dir)
    tick = progress(len(records)) if progress is not None else None
    with nd.store() as store:
        p = plan(
            records,
            m,
            source=source_id,
            adapter=adapter_name,
            own=own_state(store),
            tracked_keys=tracked(store, source_id),
            sync_deletes=sync_deletes,
            in_scope=scope_check(store),
            tick=tick,
            elsewhere=claimed_elsewhere(store, source_id),
        )
        p.dry_run = dry_run
        check_plan(p, strict=strict)
        if dry_run or not p.ops:
            return p, None
        if p.ops and before_signing is not None:
            before_signing(store)
        out = commit(store, nd.key_for_next_edit(store) if p.ops else None, p, author=author)
    return p, out
