"""Held contact changes in a running federation (issue 16 part 1, PROTOCOL.md §16): real nodes, real SMTP.

un notifies (role "un", [held] notify = "auto"): it mails the previous mailbox and the State's other PoC
through a real aiosmtpd relay (STARTTLS, AUTH), signs the notice, and releases after a short hold.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pocsync.core import envelope as dsse
from pocsync.core import hlc as hlcmod
from pocsync.folder.nodedir import NodeDir
from tests.support.cli import run
from tests.support.nodes import Federation, entry, wait_for
from tests.support.smtp import SmtpServer

HOLD_S = 6
OLD = "cert-deu-old@example.org"
NEW = "cert-deu-new@example.org"
EVIL = "cert-deu-attacker@example.net"
DIPLO = "diplo-deu@example.org"


def held_rows(node) -> list[dict[str, Any]]:
    with node.store() as s:
        return s.held_changes()


def view(node, key: str) -> dict[str, Any] | None:
    with node.store() as s:
        row = s.entry(key)
    return row["entry"] if row else None


def health(node) -> dict:
    op = run("token", "issue", "--data", node.data, "--operator", "watch").output.strip()
    req = urllib.request.Request(node.url + "/v1/health", headers={"Authorization": f"Bearer {op}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def metrics(node) -> str:
    op = run("token", "issue", "--data", node.data, "--operator", "watch").output.strip()
    req = urllib.request.Request(node.url + "/metrics", headers={"Authorization": f"Bearer {op}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


def http(url: str, data: bytes | None = None) -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def body_of(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def raw_sign(fed: Federation, origin: str, ops: list[dict[str, Any]], *, author: str) -> Any:
    """Sign ops with the node's own key as a hostile insider with shell access would (no origin checks)."""
    with fed[origin].store() as s:
        head = s.heads()[origin]
        hlc = hlcmod.next_hlc(s.replica().state.max_hlc(), time.time_ns() // 10**6)
        payload = json.dumps(
            {
                "type": "pocsync.changeset/v1",
                "origin": origin,
                "seq": head.seq + 1,
                "prev": head.id,
                "hlc": hlc,
                "manifest": s.manifest().version,
                "author": author,
                "ops": ops,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        nd = NodeDir.open(fed[origin].data)
        env = dsse.sign(dsse.CHANGESET_TYPE, payload, f"{origin}:k1", nd.signing_key("k1"))
        out = s.receive(env.to_bytes(), source="local")
        assert out.status == "accepted", out
        return out


def in_browser(fed: Federation, *, hidden: str) -> None:
    from playwright.sync_api import expect

    from tests.support.browser import browser, screenshot

    tok = run("token", "issue", "--data", fed["eu"].data, "--poc", "DEU/technical", "--days", "1").output.strip()
    op = run("token", "issue", "--data", fed["osce"].data, "--operator", "ops").output.strip()
    with browser() as b:
        page = b.new_page()
        page.set_default_timeout(30_000)
        expect.set_options(timeout=30_000)
        page.goto(fed["eu"].url + "/")
        page.fill("#token", tok)
        page.click("#signin-btn")
        expect(page.locator("#results tbody tr").first).to_be_visible()
        page.goto(fed["eu"].url + "/#/entry/FRA%2Ftechnical")
        card = page.locator("#held-changes")
        expect(card).to_contain_text("Pending changes of contact details")
        expect(card).to_contain_text("proposed by eu")
        expect(card).to_contain_text("after a notice by another directory and the hold period")
        screenshot(page, "held-poc-page")
        assert hidden not in page.inner_text("body") and hidden not in page.content()
        dash = b.new_page()
        dash.goto(fed["osce"].url + "/dashboard")
        dash.fill("#token", op)
        dash.click("#signin-btn")
        expect(dash.locator("#held-alarms .alarm")).to_contain_text(
            "OBJECTION: the held contact change of DEU/technical by eu"
        )
        screenshot(dash, "held-dashboard")


@pytest.mark.slow
def test_held_contact_changes_in_a_federation_with_a_real_relay(tmp_path: Path) -> None:
    with SmtpServer(tmp_path) as srv:
        fed = Federation(tmp_path, names=("un", "eu", "osce"))
        toml = fed["un"].data / "sync.toml"
        toml.write_text(toml.read_text() + srv.smtp_toml() + "\n[held]\ninterval_seconds = 1\n")
        # the federation enables the guard: a short hold, and a staff key of eu (alice) that may approve
        m2 = tmp_path / "m2.json"
        m2.write_bytes(fed.manifest.read_bytes())
        run("manifest", "set-features", m2, "--features", "held-changes,toy-note")
        run("manifest", "set-hold", m2, "--seconds", str(HOLD_S))
        run("keys", "staff-init", "--out", tmp_path / "alice", "--name", "alice")
        run(
            "manifest",
            "staff-key",
            m2,
            "--node",
            "eu",
            "--name",
            "alice",
            "--public-file",
            tmp_path / "alice" / "alice.pub",
        )
        fed.sign(m2)
        for n in fed.nodes:
            run("manifest", "install", "--data", fed[n].data, m2)
        # first nominations: not held
        fed["eu"].put(
            entry("DEU/technical", emails=[OLD]),
            entry("DEU/diplomatic", emails=[DIPLO]),
            entry("FRA/technical", emails=[], phones=["+33100000000"]),
        )
        try:
            fed.start()
            fed.wait_converged()
            for n in fed.nodes:
                assert view(fed[n], "DEU/technical")["emails"] == [OLD] and held_rows(fed[n]) == []

            # 1. a channel change at eu is pending everywhere; the previous mailbox and the other PoC get the notice
            out = run(
                "entry",
                "put",
                "--data",
                fed["eu"].data,
                "-",
                "--author",
                "staff@eu",
                input=json.dumps(entry("DEU/technical", emails=[NEW])),
            ).output
            assert "held: DEU/technical (emails) takes effect after a notice by another node" in out
            for n in fed.nodes:
                wait_for(
                    lambda n=n: [r["key"] for r in held_rows(fed[n])] == ["DEU/technical"],
                    30,
                    f"{n} to hold the change",
                )
                assert view(fed[n], "DEU/technical")["emails"] == [OLD]
            pending = run("entry", "pending", "--data", fed["osce"].data, "--json").output
            assert json.loads(pending)[0]["fields"] == ["emails"] and NEW not in pending
            msgs = srv.wait_for(2, timeout=60)
            to = sorted(str(m["To"]) for m in msgs)
            assert to == sorted([OLD, DIPLO])
            for m in msgs:
                text = body_of(m)
                assert "DEU/technical" in text and "takes effect at the earliest" in text
                assert NEW not in text and NEW not in str(m["Subject"])
                assert re.search(r"/held/object\?token=[A-Za-z0-9_-]{40,}", text)
            for n in fed.nodes:  # the notice (signed by un once the relay accepted the mail) is everywhere
                wait_for(lambda n=n: (held_rows(fed[n]) or [{}])[0].get("notice") is not None, 30, f"notice at {n}")
            assert held_rows(fed["eu"])[0]["notice"]["origin"] == "un"
            # after the hold, un releases it: the change takes effect everywhere, one digest
            for n in fed.nodes:
                wait_for(
                    lambda n=n: (view(fed[n], "DEU/technical") or {}).get("emails") == [NEW],
                    60,
                    f"the change to take effect at {n}",
                )
            fed.wait_converged()
            assert all(held_rows(fed[n]) == [] for n in fed.nodes)

            # 2. an objection through the link cancels the next change everywhere and raises the alarm
            fed["eu"].put(entry("DEU/technical", emails=[EVIL]))
            msgs = srv.wait_for(4, timeout=60)[2:]
            to_prev = next(m for m in msgs if str(m["To"]) == NEW)  # the PREVIOUS channel, not the new one
            assert all(str(m["To"]) != EVIL for m in srv.messages)
            link = re.search(r"(http://\S+/held/object\?token=([A-Za-z0-9_-]+))", body_of(to_prev))
            url, token = link.group(1), link.group(2)
            status, headers, page = http(url)
            assert status == 200 and "<form" in page and EVIL not in page
            assert '<p lang="fr">Une modification de la fiche DEU/technical' in page and '<p lang="es">' in page
            assert headers.get("Referrer-Policy") == "no-referrer" and "default-src 'none'" in headers.get(
                "Content-Security-Policy", ""
            )
            assert all(r["status"] == "pending" for r in held_rows(fed["un"]))  # a GET changes nothing
            post = url.split("?")[0]
            status, _, page = http(post, urllib.parse.urlencode({"token": token}).encode())
            assert status == 200 and "Objection recorded" in page
            assert '<p lang="fr">Opposition enregistrée' in page and '<p lang="es">Objeción registrada' in page
            assert http(post, urllib.parse.urlencode({"token": token}).encode())[0] == 404  # single use
            for n in fed.nodes:
                wait_for(lambda n=n: [r["status"] for r in held_rows(fed[n])] == ["objected"], 30, f"objection at {n}")
                h = health(fed[n])
                assert [o["key"] for o in h["held"]["objected"]] == ["DEU/technical"]
                assert 'pocsync_held_changes{status="objected"} 1.0' in metrics(fed[n])  # the alert's metric
            time.sleep(HOLD_S + 3)  # the hold passes: nothing releases an objected change
            for n in fed.nodes:
                assert view(fed[n], "DEU/technical")["emails"] == [NEW]
            assert token not in fed["un"].log.read_text()  # never logged

            # 3. approval by a second author (another node) makes a change effective at once
            fed["eu"].put(entry("DEU/diplomatic", emails=[DIPLO], person="B. Example"))
            wait_for(lambda: any(r["key"] == "DEU/diplomatic" for r in held_rows(fed["osce"])), 30, "osce to hold it")
            seen = json.loads(run("entry", "pending", "--data", fed["osce"].data, "--json", "--values").output)
            assert [r["entry"]["person"] for r in seen if r["key"] == "DEU/diplomatic"] == ["B. Example"]
            run("entry", "approve", "--data", fed["osce"].data, "DEU/diplomatic", "--author", "reviewer@osce")
            assert view(fed["osce"], "DEU/diplomatic")["person"] == "B. Example"
            for n in fed.nodes:
                wait_for(
                    lambda n=n: (view(fed[n], "DEU/diplomatic") or {}).get("person") == "B. Example",
                    30,
                    f"the approved change at {n}",
                )

            # 4. the insider at eu: self-approval, typed names, early release and hand-signed ops change nothing
            fed["eu"].put(entry("FRA/technical", emails=[], phones=["+33199999999"]))  # nobody to mail: no notice
            wait_for(lambda: any(r["key"] == "FRA/technical" for r in held_rows(fed["eu"])), 30, "eu to hold it")
            res = run(
                "entry", "approve", "--data", fed["eu"].data, "FRA/technical", "--author", "another-person@eu", ok=False
            )
            assert res.exit_code != 0 and "self_approval" in res.output and "Traceback" not in res.output
            res = run("entry", "release", "--data", fed["eu"].data, "FRA/technical", "--author", "x", ok=False)
            assert res.exit_code != 0 and "release_early" in res.output
            ref = held_rows(fed["eu"])[-1]["put"]
            for op in ("notice", "approve", "release"):
                raw_sign(fed, "eu", [{"op": op, "key": "FRA/technical", "put": ref}], author="someone-else@eu")
            fed.wait_converged()
            for n in fed.nodes:
                assert view(fed[n], "FRA/technical")["phones"] == ["+33100000000"]
                assert any(r["key"] == "FRA/technical" and r["status"] == "pending" for r in held_rows(fed[n]))
            # the PoC page shows the pending change and when it takes effect, never the new phone; every dashboard
            # shows the objection of step 2
            in_browser(fed, hidden="+33199999999")
            # a listed staff key of another person approves it at eu
            run(
                "entry",
                "approve",
                "--data",
                fed["eu"].data,
                "FRA/technical",
                "--author",
                "alice",
                "--staff-key",
                tmp_path / "alice" / "alice.key",
                "--staff-name",
                "alice",
            )
            for n in fed.nodes:
                wait_for(
                    lambda n=n: (view(fed[n], "FRA/technical") or {}).get("phones") == ["+33199999999"],
                    30,
                    f"the staff-approved change at {n}",
                )

            # 5. a withdrawal is not held; a later put with other channels is
            run("entry", "withdraw", "--data", fed["eu"].data, "DEU/diplomatic", "--author", "staff@eu")
            assert view(fed["eu"], "DEU/diplomatic") is None
            for n in fed.nodes:
                wait_for(lambda n=n: view(fed[n], "DEU/diplomatic") is None, 30, f"the withdrawal at {n}")
            fed["eu"].put(entry("DEU/diplomatic", emails=["diplo-deu-2@example.org"]))
            assert view(fed["eu"], "DEU/diplomatic") is None
            assert any(r["key"] == "DEU/diplomatic" for r in held_rows(fed["eu"]))
            # a first nomination after the start is not held either
            fed["eu"].put(entry("ITA/technical"))
            for n in fed.nodes:
                wait_for(lambda n=n: view(fed[n], "ITA/technical") is not None, 30, f"ITA at {n}")
            fed.wait_converged()
        finally:
            fed.stop()
