"""The crisis snapshot (issue 16 part 3): create, verify offline against the root key alone, refuse a one-byte
change and a wrong passphrase without a traceback, render a printable page whose PDF (headless Chromium) holds
every entry of the view with the snapshot's time and digest on every page."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import unicodedata
from pathlib import Path

import pycountry
import pyrage
import pytest

from pocsync.core import jsonc
from pocsync.directory import snapshot as snap
from tests.support.browser import browser
from tests.support.cli import ENTRIES, LocalFederation, run, sh


def _entries(n_states: int) -> list[dict]:
    out = []
    for c in sorted(pycountry.countries, key=lambda c: c.alpha_3)[:n_states]:
        for kind in ("technical", "diplomatic"):
            e = {
                "state": c.alpha_3,
                "kind": kind,
                "organisation": f"Example {kind} PoC of {c.alpha_3} (fictional)",
                "emails": [f"{kind[:4]}-{c.alpha_3.lower()}@example.org"],
                "phones": ["+4315123456"],
                "available_24_7": kind == "technical",
            }
            if kind == "diplomatic":
                e["person"] = "A. Example"
            out.append(e)
    return out


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("snap")
    fed = LocalFederation(base / "fed")
    fed.put("eu", ENTRIES["eu"])
    fed.put("osce", ENTRIES["osce"])
    fed.put("un", _entries(45))  # enough rows for several printed pages
    fed.sync_all()
    pw = base / "pw"
    res = sh(
        "snapshot",
        "create",
        "--data",
        fed.data("un"),
        "--out",
        base / "s.age",
        "--passphrase-file",
        pw,
        "--generate-passphrase",
    )
    assert b"passphrase written to" in res.stderr
    digest = fed.digest("un")
    with open(base / "view.json", "w") as f:
        json.dump(json.loads(run("entry", "list", "--data", fed.data("un"), "--json").output), f)
    # the nodes are gone: what follows needs the file, the passphrase and root.pub only
    shutil.copy(base / "fed" / "root" / "root.pub", base / "root.pub")
    shutil.rmtree(base / "fed")
    return {
        "base": base,
        "pw": pw,
        "file": base / "s.age",
        "root": base / "root.pub",
        "digest": digest,
        "view": json.loads((base / "view.json").read_text()),
    }


def test_generated_passphrase_has_at_least_128_bits(made: dict) -> None:
    text = made["pw"].read_text().strip()
    assert oct(made["pw"].stat().st_mode & 0o777) == "0o600"
    symbols = text.replace("-", "")
    assert set(symbols) <= set(snap.BASE32) and len(snap.BASE32) == 32
    assert len(symbols) * math.log2(len(snap.BASE32)) >= 128
    assert len({snap.generate_passphrase() for _ in range(50)}) == 50


def test_verify_succeeds_offline_and_prints_the_age(made: dict) -> None:
    res = sh("snapshot", "verify", made["file"], "--root-pub", made["root"], "--passphrase-file", made["pw"])
    out = res.stdout.decode()
    assert out.startswith("ok: snapshot by un") and made["digest"] in out and " ago" in out
    j = json.loads(
        sh(
            "snapshot", "verify", made["file"], "--root-pub", made["root"], "--passphrase-file", made["pw"], "--json"
        ).stdout
    )
    assert j["ok"] and j["digest"] == made["digest"] and j["entries"] == len(made["view"]) and j["age_seconds"] >= 0


def _fails(made: dict, *args: object, fragment: str) -> None:
    res = sh("snapshot", "verify", *args, check=False)
    err = res.stderr.decode()
    assert res.returncode == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and fragment in err, err


def test_the_independent_verifier_agrees(made: dict) -> None:
    from tests.independent.bundle_verify import BundleError
    from tests.independent.snapshot_verify import verify_snapshot

    plain = pyrage.passphrase.decrypt(made["file"].read_bytes(), made["pw"].read_text().strip())
    out = verify_snapshot(plain, made["root"].read_text())
    assert out["digest"] == made["digest"] and out["entries"] == len(made["view"])
    assert verify_snapshot(jsonc.dumps(json.loads(plain)), made["root"].read_text()) == out
    c = json.loads(plain)
    env = json.loads(c["snapshot"])
    raw = bytearray(base64.b64decode(env["payload"]))
    raw[raw.index(b"@example.org")] ^= 0x01
    env["payload"] = base64.b64encode(bytes(raw)).decode()
    c["snapshot"] = json.dumps(env)
    with pytest.raises(BundleError, match="signature"):
        verify_snapshot(json.dumps(c).encode(), made["root"].read_text())


def test_a_one_byte_change_fails(made: dict) -> None:
    base, blob = made["base"], made["file"].read_bytes()
    for where in (len(blob) // 2, len(blob) - 1, 100):  # the payload, the last byte, the header's stanza
        bad = bytearray(blob)
        bad[where] ^= 0x01
        (base / "bad.age").write_bytes(bytes(bad))
        _fails(made, base / "bad.age", "--root-pub", made["root"], "--passphrase-file", made["pw"], fragment="error (")
    # a change inside the signed container, encrypted again with the right passphrase: the signature catches it
    pw = made["pw"].read_text().strip()
    plain = bytearray(pyrage.passphrase.decrypt(blob, pw))
    env = json.loads(json.loads(bytes(plain))["snapshot"])
    payload = bytearray(base64.b64decode(env["payload"]))
    payload[payload.index(b"@example.org")] ^= 0x01
    env["payload"] = base64.b64encode(bytes(payload)).decode()
    container = json.loads(bytes(plain))
    container["snapshot"] = jsonc.dumps(env).decode()
    (base / "resigned.age").write_bytes(pyrage.passphrase.encrypt(jsonc.dumps(container), pw))
    _fails(
        made,
        base / "resigned.age",
        "--root-pub",
        made["root"],
        "--passphrase-file",
        made["pw"],
        fragment="bad_signature",
    )


def test_a_wrong_passphrase_or_root_key_fails_without_a_traceback(made: dict) -> None:
    base = made["base"]
    wrong = base / "wrong-pw"
    wrong.write_text("not the passphrase at all\n")
    os.chmod(wrong, 0o600)
    _fails(made, made["file"], "--root-pub", made["root"], "--passphrase-file", wrong, fragment="decrypt_failed")
    other = base / "other-root"
    run("keys", "root-init", "--out", other)
    _fails(
        made,
        made["file"],
        "--root-pub",
        other / "root.pub",
        "--passphrase-file",
        made["pw"],
        fragment="untrusted_chain",
    )
    loose = base / "loose-pw"
    loose.write_text(made["pw"].read_text())
    os.chmod(loose, 0o644)
    _fails(made, made["file"], "--root-pub", made["root"], "--passphrase-file", loose, fragment="chmod 600")


def test_recipients_and_identity(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path / "fed", nodes=("un", "eu"))
    fed.put("eu", ENTRIES["eu"])
    pub = run("snapshot", "keygen", "--out", tmp_path / "id").output.strip()
    assert pub.startswith("age1") and oct((tmp_path / "id").stat().st_mode & 0o777) == "0o600"
    pub2 = run("snapshot", "keygen", "--out", tmp_path / "id2").output.strip()
    run(
        "snapshot",
        "create",
        "--data",
        fed.data("eu"),
        "--out",
        tmp_path / "r.age",
        "--recipient",
        pub,
        "--recipient",
        pub2,
    )
    for ident in ("id", "id2"):
        res = run(
            "snapshot",
            "verify",
            tmp_path / "r.age",
            "--root-pub",
            tmp_path / "fed" / "root" / "root.pub",
            "--identity",
            tmp_path / ident,
        )
        assert res.output.startswith("ok: snapshot by eu")
    run("snapshot", "keygen", "--out", tmp_path / "id3")
    res = sh(
        "snapshot",
        "verify",
        tmp_path / "r.age",
        "--root-pub",
        tmp_path / "fed" / "root" / "root.pub",
        "--identity",
        tmp_path / "id3",
        check=False,
    )
    assert res.returncode == 2 and b"decrypt_failed" in res.stderr and b"Traceback" not in res.stderr


def test_rendered_page_printed_to_pdf_holds_every_entry(made: dict) -> None:
    from pypdf import PdfReader

    base = made["base"]
    sh(
        "snapshot",
        "render",
        made["file"],
        "--passphrase-file",
        made["pw"],
        "--root-pub",
        made["root"],
        "--html",
        base / "s.html",
    )
    page_html = (base / "s.html").read_text()
    assert "<script" not in page_html.lower() and not re.search(r"(src|href)\s*=", page_html, re.I)
    assert "url(" not in page_html and "@import" not in page_html
    with browser() as b:
        page = b.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto((base / "s.html").as_uri())
        page.pdf(path=str(base / "s.pdf"), format="A4", print_background=True)
    assert [u for u in requests if not u.startswith("file:")] == []  # no outside asset is fetched
    reader = PdfReader(str(base / "s.pdf"))
    pages = [re.sub(r"\s+", "", unicodedata.normalize("NFKC", p.extract_text())) for p in reader.pages]
    assert len(pages) >= 3, len(pages)
    everything = "".join(pages)
    for row in made["view"]:
        e = row["entry"]
        for value in (e["organisation"], *e.get("emails", []), *e.get("phones", [])):
            assert re.sub(r"\s+", "", value) in everything, f"{row['key']}: {value} missing from the PDF"
    taken = json.loads(
        sh(
            "snapshot", "verify", made["file"], "--root-pub", made["root"], "--passphrase-file", made["pw"], "--json"
        ).stdout
    )["taken_at"]
    for i, text in enumerate(pages, start=1):
        assert made["digest"] in text, f"page {i} lacks the digest"
        assert taken in text, f"page {i} lacks the time"
