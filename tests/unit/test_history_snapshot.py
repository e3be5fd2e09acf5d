"""Pure parts of issue 16 parts 2 and 3: the history diff and key rule, the snapshot page's escaping, the
snapshot verifier against forged chains, and the page script's text-only rule."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pocsync.core import changeset as csmod
from pocsync.core import envelope as dsse
from pocsync.core import jsonc
from pocsync.core import manifest as mf
from pocsync.core.keys import ed25519_public_b64
from pocsync.directory import history
from pocsync.directory import snapshot as snap
from tests.support.data import entry
from tests.support.fed import T0, Fed

STATIC = Path(__file__).parents[2] / "pocsync" / "api" / "static"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def test_diff_names_added_changed_and_removed_fields() -> None:
    d = history.diff(
        {"emails": ["a@example.org"], "phones": ["+4311"], "notes": "x"},
        {"emails": ["b@example.org"], "phones": ["+4311"], "person": "A. Example"},
    )
    assert [(c["field"], c["change"]) for c in d] == [("emails", "changed"), ("notes", "removed"), ("person", "added")]
    assert history.diff(None, None) == []


def test_state_of_uses_the_kinds_rule_and_a_prefix_for_unknown_kinds() -> None:
    assert history.state_of("put", "DEU/technical") == "DEU"
    assert history.state_of("note", "DEU") == "DEU"
    assert history.state_of("put", "DEU") is None  # not of the entry namespace
    assert history.state_of("some-future-op", "DEU/technical") == "DEU"
    assert history.state_of("some-future-op", 42) is None


@given(st.text(max_size=200))
def test_rendered_fields_are_escaped_and_hold_no_bidi_or_control_character(text: str) -> None:
    out = snap.clean_text(text)
    assert not any(c in out for c in BIDI) and not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", out)
    assert "<" not in out and ">" not in out and '"' not in out


def test_rendered_page_holds_no_markup_from_data_and_no_outside_asset() -> None:
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    payload = {
        "taken_at": "2026-01-01T00:00:00.000Z",
        "digest": "sha256:" + "0" * 64,
        "node": "eu<b>",
        "entries": [
            {
                "key": "DEU/technical",
                "origin": "eu",
                "hlc": "1763800000000-0000",
                "entry": {
                    **entry("DEU/technical", full=True),
                    "organisation": hostile,
                    "phones": ["+49\u202e8765\u202c4321"],
                    "notes": "a\u2066b\u2069c",
                },
            }
        ],
    }
    page = snap.render_html(payload)
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    assert "+4987654321" in page and not any(c in page for c in BIDI)
    assert "NOT VERIFIED" in page

    class Tags(HTMLParser):
        found: list = []

        def handle_starttag(self, tag: str, attrs: list) -> None:
            self.found.append((tag, sorted(k for k, _ in attrs)))

    parser = Tags()
    parser.feed(page)
    assert {t for t, _ in parser.found} <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "p",
        "span",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    }
    assert all(set(a) <= {"lang", "charset", "http-equiv", "content", "class", "colspan"} for _, a in parser.found)
    assert "eu&lt;b&gt;" in page


def _signed_container(fed: Fed, *, root: Ed25519PrivateKey | None = None, node: str = "eu") -> bytes:
    payload = {
        "type": snap.SNAPSHOT_PAYLOAD,
        "node": node,
        "taken_at": snap._utc(T0),
        "taken_ms": T0,
        "manifest": fed.manifest.version,
        "manifest_id": fed.manifest.id,
        "heads": {},
        "entries": [],
        "records": [],
        "digest": snap.digest_of({"entries": [], "records": []}),
    }
    env = dsse.sign(snap.SNAPSHOT_TYPE, jsonc.dumps(payload), f"{node}:k1", fed.keys[node]["k1"])
    return jsonc.dumps(
        {
            "format": snap.CONTAINER_FORMAT,
            "snapshot": env.to_bytes().decode(),
            "manifests": [fed.manifest.to_bytes().decode()],
        }
    )


def test_verify_anchors_at_the_given_root_never_at_the_roots_the_file_names() -> None:
    fed = Fed()
    good = _signed_container(fed)
    root = ed25519_public_b64(fed.roots[0])
    assert snap.verify(good, root).payload["node"] == "eu"
    # a whole federation made up by an attacker verifies against its own root, not against ours
    forged = Fed()
    with pytest.raises(snap.SnapshotError) as exc:
        snap.verify(_signed_container(forged), root)
    assert exc.value.reason == "untrusted_chain"
    # a snapshot signed by a key the manifest does not give the node
    payload = jsonc.loads(dsse.parse(jsonc.loads(good)["snapshot"].encode(), max_bytes=1 << 20).payload)
    env = dsse.sign(snap.SNAPSHOT_TYPE, jsonc.dumps(payload), "eu:k1", Ed25519PrivateKey.generate())
    c = jsonc.loads(good)
    c["snapshot"] = env.to_bytes().decode()
    with pytest.raises(snap.SnapshotError) as exc:
        snap.verify(jsonc.dumps(c), root)
    assert exc.value.reason == "bad_signature"
    # a digest that does not match the entries
    payload["digest"] = "sha256:" + "1" * 64
    c["snapshot"] = (
        dsse.sign(snap.SNAPSHOT_TYPE, jsonc.dumps(payload), "eu:k1", fed.keys["eu"]["k1"]).to_bytes().decode()
    )
    with pytest.raises(snap.SnapshotError) as exc:
        snap.verify(jsonc.dumps(c), root)
    assert exc.value.reason == "digest_mismatch"


def test_a_later_manifest_needs_the_previous_roots() -> None:
    fed = Fed()
    root = ed25519_public_b64(fed.roots[0])
    other = Ed25519PrivateKey.generate()  # v2 hands the federation to a root that v1's roots never signed for
    p2 = mf.remove_root(mf.add_root(mf.next_version(fed.manifest.payload), ed25519_public_b64(other)), root)
    with pytest.raises(snap.SnapshotError) as exc:
        snap.verify_chain([fed.manifest, mf.sign(mf.unsigned(p2), other)], root)
    assert exc.value.reason == "threshold_not_met"
    rotated = mf.sign_as_previous_root(mf.sign(mf.unsigned(p2), other), fed.roots[0])
    assert snap.verify_chain([fed.manifest, rotated], root)[0].version == 2
    v2 = mf.sign(mf.unsigned(mf.next_version(fed.manifest.payload)), fed.roots[0])
    assert snap.verify_chain([v2, fed.manifest], root)[0].version == 2


def test_the_history_page_script_renders_text_only_and_translates_its_words() -> None:
    js = (STATIC / "history.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink
    assert '<script src="/static/history.js"></script>' in (STATIC / "index.html").read_text()


def _changesets(fed: Fed) -> list[bytes]:
    out, heads = [], {}
    plan = [
        (
            "eu",
            [
                {"op": "put", "key": "DEU/technical", "entry": entry("DEU/technical", full=True)},
                {"op": "put", "key": "FRA/technical", "entry": entry("FRA/technical", full=True)},
            ],
        ),
        (
            "osce",
            [
                {
                    "op": "put",
                    "key": "DEU/technical",
                    "entry": entry("DEU/technical", emails=["o@example.org"], full=True),
                }
            ],
        ),
        (
            "arf",
            [
                {
                    "op": "put",
                    "key": "DEU/technical",
                    "entry": entry("DEU/technical", emails=["x@example.net"], full=True),
                }
            ],
        ),
        (
            "eu",
            [
                {
                    "op": "put",
                    "key": "DEU/technical",
                    "entry": entry("DEU/technical", emails=["n@example.org"], full=True),
                }
            ],
        ),
        ("eu", [{"op": "withdraw", "key": "DEU/diplomatic"}, {"op": "note", "key": "DEU", "text": "Exercise"}]),
    ]
    for i, (node, ops) in enumerate(plan):
        seq, prev = heads.get(node, (0, None))
        hlc = f"{T0 + i * 1000:013d}-0000"
        data = fed.forge(node, seq=seq + 1, prev=prev, hlc=hlc, ops=ops, author=f"staff@{node}")
        heads[node] = (seq + 1, csmod.peek_identity(data, max_bytes=1 << 20)[0])
        out.append(data)
    return out


FED = Fed()
FED.manifest = FED.signed(mf.set_features(FED.manifest.payload, ["toy-note"]))  # another namespace: `note`
CHANGESETS = _changesets(FED)


@given(st.permutations(range(len(CHANGESETS))), st.lists(st.integers(0, len(CHANGESETS) - 1), max_size=3))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_history_is_a_function_of_the_log_whatever_the_order_of_arrival(tmp_path_factory, order, dups) -> None:
    from pocsync.store import Store

    def history_after(seq_of_indexes: list[int]) -> dict:
        path = tmp_path_factory.mktemp("h") / "store.sqlite"
        with Store.create(path, node_id="un") as s:
            s.install_manifest(FED.manifest, now_ms_=T0)
            for i in seq_of_indexes:
                s.receive(CHANGESETS[i], source="test", now_ms_=T0 + 60_000)
            h = history.state_history(s, "DEU")
            assert s.summary()["refused"] == 1
            return h

    ref = history_after(list(range(len(CHANGESETS))))
    assert [(x["origin"], x["status"]) for x in ref["ops"]] == [
        ("eu", "applied"),
        ("osce", "applied"),
        ("arf", "refused"),
        ("eu", "applied"),
        ("eu", "applied"),
        ("eu", "applied"),
    ]
    note = ref["ops"][-1]
    assert (note["namespace"], note["fields"], note["diff"]["changes"][0]["field"]) == (
        "note",
        {"text": "Exercise"},
        "text",
    )
    assert [(r["namespace"], r["key"], r["record"]["text"]) for r in ref["records"]] == [("note", "DEU", "Exercise")]
    assert ref["ops"][3]["diff"]["against"]["origin"] == "osce"  # the previous applied version, any origin
    assert history_after(list(order) + dups) == ref


def test_a_snapshot_taken_while_a_contact_change_is_held_verifies(tmp_path: Path) -> None:
    """Found by trying the README: held-changes adds digest lines (§16.5); a snapshot taken while a change was
    held failed `snapshot verify` with digest_mismatch, in pocsync and in the independent verifier."""
    from pocsync.store import Store
    from tests.independent import snapshot_verify
    from tests.unit.test_held import FED as HFED
    from tests.unit.test_held import M_ON, held_change

    rep, ref = held_change()
    with Store.create(tmp_path / "s.sqlite", node_id="un") as s:
        s.install_manifest(HFED.manifest, now_ms_=T0)
        s.install_manifest(M_ON, now_ms_=T0)
        for env in rep.state.all_log():
            s.receive(env, now_ms_=T0 + 5000)
        assert s.conn.execute("SELECT status FROM held_puts").fetchone()["status"] == "pending"

        class Keys:
            def signing_key(self, name: str) -> Ed25519PrivateKey:
                return HFED.key("un", name)

        plain = snap.build(s, Keys(), now_ms=T0 + 6000)
        digest = s.digest()
    got = snap.verify(plain, ed25519_public_b64(HFED.roots[0]))
    assert got.payload["digest"] == digest
    assert ["held", "DEU/technical", ref] in got.payload["held"]
    assert snapshot_verify.verify_snapshot(plain, ed25519_public_b64(HFED.roots[0]))["digest"] == digest
