"""A State's own audit trail on running nodes (issue 16 part 2): every op on its keys from every origin,
including a hostile directory's out-of-scope write; 403 for another State; a bundle the independent
verifier checks without pocsync (and refuses once tampered with); the page view in Chromium; the snapshot
download for a signed-in PoC."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pocsync.core import changeset as csmod
from pocsync.directory import snapshot as snap
from pocsync.folder.nodedir import NodeDir
from tests.independent.bundle_verify import BundleError, verify_bundle
from tests.support.browser import browser, screenshot
from tests.support.cli import run
from tests.support.nodes import Federation, entry, wait_for

pytestmark = pytest.mark.slow


def call(url: str, token: str | None = None, *, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    h = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(url, method=method, headers=h, data=body)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def poc(fed: Federation, node: str, key: str) -> str:
    return run("token", "issue", "--data", fed[node].data, "--poc", key, "--days", "1").output.strip()


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory):
    f = Federation(tmp_path_factory.mktemp("history"), ("un", "eu", "osce", "arf"), pull_interval=2)
    f.start()
    # eu lists DEU and AUT in one change-set (the bundle then reveals AUT's op too), osce lists DEU as well
    f["eu"].put(entry("DEU/technical", emails=["cert-deu@example.org"]), entry("AUT/technical"))
    f["osce"].put(entry("DEU/technical", emails=["cert-deu-osce@example.org"], phones=["+493055555555"]))
    f["arf"].put(entry("JPN/technical"))
    f.wait_converged()
    f["eu"].put(entry("DEU/technical", emails=["cert-deu-new@example.org"], available_24_7=False))
    # a hostile directory (arf, scope AUS/IDN/JPN) signs a redirect of DEU's technical PoC by hand, into its log
    with f["arf"].store() as s:
        head = s.heads()["arf"]
        m = s.require_manifest()
    hlc = f"{time.time_ns() // 10**6:013d}-0000"
    rogue = csmod.sign(
        csmod.build_payload(
            origin="arf",
            seq=head.seq + 1,
            prev=head.id,
            hlc=hlc,
            manifest=m.version,
            author="mallory@arf",
            ops=[
                {
                    "op": "put",
                    "key": "DEU/technical",
                    "entry": entry("DEU/technical", emails=["attacker@example.net"], holder_epoch=hlc),
                }
            ],
        ),
        keyid="arf:k1",
        key=NodeDir.open(f["arf"].data).signing_key("k1"),
    )
    res = run("log", "import", "--data", f["arf"].data, "-", input=rogue + b"\n", ok=False)
    assert res.exit_code == 1 and "out_of_scope" in res.output
    for n in f.nodes:
        wait_for(
            lambda n=n: [r["reason"] for r in f[n].store().refused()] == ["out_of_scope"],
            60,
            f"{n} to refuse arf's out-of-scope op",
        )
    f.wait_converged()
    yield f
    f.stop()


def test_a_poc_of_deu_sees_every_op_on_deu_keys_from_every_origin_and_the_refused_attempt(fed: Federation) -> None:
    tok = poc(fed, "eu", "DEU/technical")
    for node in ("un", "osce"):  # any node answers alike (the refusal is recorded everywhere)
        status, body = call(fed[node].url + "/v1/history/deu", tok)
        assert status == 200, body
        h = json.loads(body)
        assert h["state"] == "DEU" and h["keys"] == ["DEU/technical"]
        by = [(x["origin"], x["status"], x["reason"]) for x in h["ops"]]
        assert sorted(by) == [
            ("arf", "refused", "out_of_scope"),
            ("eu", "applied", None),
            ("eu", "applied", None),
            ("osce", "applied", None),
        ]
        rogue = next(x for x in h["ops"] if x["origin"] == "arf")
        assert rogue["author"] == "mallory@arf" and rogue["entry"]["emails"] == ["attacker@example.net"]
        assert "outside the scope of arf" in rogue["message"]
        assert all(x["time"] and x["author"] == f"staff@{x['origin']}" for x in h["ops"] if x["origin"] != "arf")
        second = [x for x in h["ops"] if x["origin"] == "eu"][-1]  # eu's change: a field-by-field diff
        changes = {c["field"]: (c["before"], c["after"]) for c in second["diff"]["changes"]}
        assert changes["emails"][1] == ["cert-deu-new@example.org"] and changes["available_24_7"] == (True, False)
        assert second["diff"]["against"] is not None
        assert [c["key"] for c in h["current"]] == ["DEU/technical"]
        assert h["current"][0]["entry"]["emails"] == ["cert-deu-new@example.org"]  # the attempt changed nothing
    deadline = time.monotonic() + 30  # audit rows are group-committed within 1 s (ADR 21)
    while True:
        with fed["un"].store() as s:
            if any(a["action"] == "history.get" and a["target"] == "DEU" for a in s.audit_log()):
                break
        assert time.monotonic() < deadline, "the history read was never audited"
        time.sleep(0.2)


def test_a_poc_of_another_state_gets_403(fed: Federation) -> None:
    aut = poc(fed, "eu", "AUT/technical")
    for path in ("/v1/history/DEU", "/v1/history/DEU/bundle"):
        status, body = call(fed["un"].url + path, aut)
        assert status == 403 and json.loads(body)["reason"] == "not_your_state"
    assert call(fed["un"].url + "/v1/history/AUT", aut)[0] == 200
    operator = run("token", "issue", "--data", fed["un"].data, "--operator", "duty").output.strip()
    assert call(fed["un"].url + "/v1/history/DEU", operator)[0] == 403
    assert call(fed["un"].url + "/v1/history/DEU")[0] == 401
    assert call(fed["un"].url + "/v1/history/D3U", aut)[0] == 400


def test_the_bundle_verifies_independently_and_fails_once_tampered(fed: Federation) -> None:
    tok = poc(fed, "eu", "DEU/technical")
    status, body = call(fed["osce"].url + "/v1/history/DEU/bundle", tok)
    assert status == 200
    root = (fed.base / "root" / "root.pub").read_text()
    out = verify_bundle(body, root)
    assert out["ops"] == 4 and out["refused"] == 1 and out["changesets"] == 4
    assert out["other_states"] == ["AUT"]  # eu's first change-set also held AUT's op: the docs say so
    b = json.loads(body)
    assert b["other_states"] == ["AUT"]

    def tampered(change) -> bytes:
        c = json.loads(body)
        change(c)
        return json.dumps(c).encode()

    def flip_payload_byte(c: dict) -> None:
        env = json.loads(c["changesets"][0])
        raw = bytearray(base64.b64decode(env["payload"]))
        raw[raw.index(b"@example.")] ^= 0x01
        env["payload"] = base64.b64encode(bytes(raw)).decode()
        c["changesets"][0] = json.dumps(env)

    def hide_refusal(c: dict) -> None:
        x = next(x for x in c["history"]["ops"] if x["origin"] == "arf")
        x["status"], x["reason"] = "applied", None

    def drop_op(c: dict) -> None:
        c["history"]["ops"] = [x for x in c["history"]["ops"] if x["origin"] != "osce"]

    for change in (flip_payload_byte, hide_refusal, drop_op):
        with pytest.raises(BundleError):
            verify_bundle(tampered(change), root)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from pocsync.core.keys import ed25519_public_b64

    with pytest.raises(BundleError, match="root key"):
        verify_bundle(body, ed25519_public_b64(Ed25519PrivateKey.generate()))


def test_history_page_in_chromium(fed: Federation) -> None:
    from playwright.sync_api import expect

    tok = poc(fed, "eu", "DEU/technical")
    errors: list[str] = []
    with browser() as b:
        page = b.new_page(locale="en-GB", accept_downloads=True)
        page.set_default_timeout(30_000)
        expect.set_options(timeout=30_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(fed["un"].url + "/")
        page.fill("#token", tok)
        page.click("#signin-btn")
        expect(page.locator("#history-link")).to_have_text("History of DEU")
        page.click("#history-link")
        expect(page.locator("#history-title")).to_contain_text("(DEU)")
        rows = page.locator("#history-ops tbody tr")
        expect(rows).to_have_count(4)
        refused = page.locator("#history-ops tbody tr.refused")
        expect(refused).to_have_count(1)
        expect(refused).to_contain_text("mallory@arf")
        expect(refused).to_contain_text("out_of_scope")
        expect(page.locator("#history-ops")).to_contain_text("cert-deu-new@example.org")
        assert page.locator("#directory").is_hidden()
        screenshot(page, "poc-history")
        page.click("#history >> text=Back to the directory")
        expect(page.locator("#directory")).to_be_visible()
        assert page.locator("#history").is_hidden()
        page.goto(fed["un"].url + "/#/entry/DEU%2Ftechnical")  # the State's own entry links to its history
        page.click("#entry-extensions a")
        expect(page.locator("#history-title")).to_contain_text("(DEU)")
        page.goto(fed["un"].url + "/")  # the crisis snapshot, encrypted to a passphrase made in the page
        with page.expect_download() as dl:
            page.click("#dl-snapshot")
        blob = Path(dl.value.path()).read_bytes()
        pw = page.inner_text("#snapshot-passphrase").strip()
        assert len(pw.replace("-", "")) == 32
        screenshot(page, "poc-snapshot-download")
    v = snap.verify(snap.decrypt(blob, passphrase=pw.encode()), (fed.base / "root" / "root.pub").read_text())
    assert v.payload["node"] == "un" and len(v.payload["entries"]) == 3
    assert errors == []


def test_signed_in_poc_downloads_a_snapshot_that_verifies_offline(fed: Federation, tmp_path: Path) -> None:
    tok = poc(fed, "eu", "AUT/technical")
    assert call(fed["eu"].url + "/v1/snapshot", tok, method="POST", body=b'{"passphrase": "short"}')[0] == 400
    status, blob = call(
        fed["eu"].url + "/v1/snapshot",
        tok,
        method="POST",
        body=json.dumps({"passphrase": "a long passphrase for the binder"}).encode(),
    )
    assert status == 200 and blob.startswith(b"age-encryption.org/v1")
    v = snap.verify(
        snap.decrypt(blob, passphrase=b"a long passphrase for the binder"), (fed.base / "root" / "root.pub").read_text()
    )
    assert v.payload["node"] == "eu" and v.payload["digest"] == fed["eu"].digest()
    assert {e["key"] for e in v.payload["entries"]} == {"DEU/technical", "AUT/technical", "JPN/technical"}
    ident = snap.read_identities(str(__import__("pyrage").x25519.Identity.generate()))
    status, blob = call(
        fed["eu"].url + "/v1/snapshot",
        tok,
        method="POST",
        body=json.dumps({"recipients": [str(ident[0].to_public())]}).encode(),
    )
    assert status == 200 and snap.decrypt(blob, identities=ident)
    assert call(fed["eu"].url + "/v1/snapshot", method="POST", body=b"{}")[0] == 401


def test_history_cli_shows_and_bundles_the_same(fed: Federation, tmp_path: Path) -> None:
    shown = json.loads(run("history", "show", "--data", fed["un"].data, "deu", "--json").output)
    assert sorted(x["origin"] for x in shown["ops"]) == ["arf", "eu", "eu", "osce"]
    table = run("history", "show", "--data", fed["un"].data, "DEU").output
    assert "mallory@arf" in table and "out_of_scope" in table
    res = run("history", "bundle", "--data", fed["un"].data, "DEU", "--out", tmp_path / "b.json")
    assert "also hold ops of AUT" in res.output
    out = verify_bundle((tmp_path / "b.json").read_bytes(), (fed.base / "root" / "root.pub").read_text())
    assert out["ops"] == 4 and out["refused"] == 1
