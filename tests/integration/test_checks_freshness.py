"""Communication checks and freshness in a running federation (issue 15, PROTOCOL.md §15).

* A node outside an entry's scope cannot record a check for it: its own CLI refuses before signing, and
  a check it signs anyway (as a broken or hostile implementation would) is refused by every peer.
* Overdue with a short policy: an unconfirmed entry becomes overdue (on the nodes' clocks, moved two
  days on), appears in `entry overdue` and in the API, and `entry confirm` clears it on every node,
  with identical digests.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pocsync import clock
from pocsync.core import checks
from pocsync.core import envelope as dsse
from pocsync.folder.nodedir import NodeDir
from tests.support.cli import run
from tests.support.nodes import Federation, entry, wait_for

pytestmark = pytest.mark.slow
DAY_MS = 86_400_000


def _refusals(fed: Federation, n: str) -> list[tuple[str, str, str]]:
    with fed[n].store() as s:
        return [(r["origin"], r["op"], r["reason"]) for r in s.refused()]


def _records(fed: Federation, n: str, ns: str) -> list[tuple[str, str]]:
    with fed[n].store() as s:
        return [(r["key"], r["origin"]) for r in s.check_records(ns)]


def _has(fed: Federation, n: str, key: str) -> bool:
    with fed[n].store() as s:
        return s.entry(key) is not None


def _confirmed_ms(fed: Federation, n: str) -> int:
    with fed[n].store() as s:
        seen = s.own_head_confirmation()
    return seen[0] if seen else 0


def _show(fed: Federation, n: str, key: str) -> dict:
    return json.loads(run("entry", "show", "--data", fed[n].data, key).output)


def test_a_node_outside_the_scope_cannot_record_a_check(tmp_path: Path) -> None:
    fed = Federation(tmp_path, names=("un", "eu", "osce"))  # eu: AUT,DEU,FRA,ITA; osce also UKR; un: all
    fed["osce"].put(entry("UKR/technical", phones=["+380441234567"]))
    fed["eu"].put(entry("AUT/technical"))
    try:
        fed.start()
        fed.wait_converged()
        wait_for(lambda: _has(fed, "eu", "UKR/technical"), 30, "eu to list UKR/technical")
        with fed["eu"].store() as s:
            eu_head = s.heads()["eu"]
        # eu's own CLI refuses before signing: nothing is committed
        res = run(
            "check",
            "record",
            "--data",
            fed["eu"].data,
            "UKR/technical",
            "--channel",
            "phone:1",
            "--result",
            "answered",
            ok=False,
        )
        assert res.exit_code != 0 and "out_of_scope" in res.output and "outside the scope of eu" in res.output, (
            res.output
        )
        assert "nothing was committed" in res.output
        with fed["eu"].store() as s:
            assert s.heads()["eu"] == eu_head  # nothing signed
        # signed anyway (as another implementation would, skipping the origin's checks): every node refuses it
        phone = checks.channel_id("phone", "+380441234567")
        with fed["eu"].store() as s:
            head = s.heads()["eu"]
            payload = json.dumps(
                {
                    "type": "pocsync.changeset/v1",
                    "origin": "eu",
                    "seq": head.seq + 1,
                    "prev": head.id,
                    "hlc": max(head.hlc, f"{time.time_ns() // 10**6}-0000"),
                    "manifest": s.manifest().version,
                    "author": "staff@eu",
                    "ops": [
                        {
                            "op": "check",
                            "key": "UKR/technical",
                            "channel": phone,
                            "result": "answered",
                            "campaign": None,
                        }
                    ],
                },
                sort_keys=True,
                separators=(",", ":"),
            ).encode()
            env = dsse.sign(dsse.CHANGESET_TYPE, payload, "eu:k1", NodeDir.open(fed["eu"].data).signing_key("k1"))
            out = s.receive(env.to_bytes(), source="import")
            assert out.status == "accepted" and [r.reason for r in out.refused] == ["out_of_scope"]
        for n in fed.nodes:
            wait_for(
                lambda n=n: ("eu", "check", "out_of_scope") in _refusals(fed, n),
                60,
                f"{n} to refuse eu's check of UKR/technical",
            )
            assert _records(fed, n, "check") == [] and _records(fed, n, "verified") == []
        # osce speaks for UKR: its check is a fact every node shows alike
        run(
            "check",
            "record",
            "--data",
            fed["osce"].data,
            "UKR/technical",
            "--channel",
            "phone:1",
            "--result",
            "answered",
            "--author",
            "duty@osce",
        )
        digest = fed.wait_converged()
        shown = {n: _show(fed, n, "UKR/technical") for n in fed.nodes}
        lv = shown["osce"]["last_verified"]
        assert lv is not None and shown["osce"]["verification"][-1] == {
            "channel": "phone 1",
            "last_result": "answered",
            "last_verified": lv,
            "last_checked": lv,
        }
        assert {n: s["last_verified"] for n, s in shown.items()} == {n: lv for n in fed.nodes}
        for n in fed.nodes:
            assert _records(fed, n, "verified") == [(f"UKR/technical/{phone}", "osce")]
            assert fed[n].digest() == digest
    finally:
        fed.stop()


def _overdue(fed: Federation, n: str) -> list[dict]:
    return json.loads(run("entry", "overdue", "--data", fed[n].data, "--all", "--json").output)


def _api_entries(fed: Federation, n: str, token: str) -> dict[str, dict]:
    req = urllib.request.Request(fed[n].url + "/v1/entries", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return {e["key"]: e for e in json.loads(r.read())["entries"]}


def _etag(fed: Federation, n: str, token: str, if_none_match: str | None = None) -> str | None:
    """The ETag of GET /v1/entries, or None for a 304."""
    h = {"Authorization": f"Bearer {token}", **({"If-None-Match": if_none_match} if if_none_match else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(fed[n].url + "/v1/entries", headers=h), timeout=10) as r:
            return r.headers["ETag"]
    except urllib.error.HTTPError as e:
        assert e.code == 304, e.code
        return None


def test_overdue_with_a_short_policy_and_confirm_clears_it_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    offset = tmp_path / "clock-offset-ms"  # every node and this CLI share one clock, moved two days on below
    offset.write_text("0")
    monkeypatch.setenv(clock.ENV, str(offset))
    fed = Federation(tmp_path, names=("un", "eu", "osce"))
    m2 = tmp_path / "m2.json"
    m2.write_bytes(fed.manifest.read_bytes())
    (tmp_path / "policy.json").write_text(json.dumps({"freshness": {"confirm_days": 1, "verify_days": 30}}))
    run("manifest", "set-features", m2, "--policy", tmp_path / "policy.json")
    fed.sign(m2)
    for n in fed.nodes:
        run("manifest", "install", "--data", fed[n].data, m2)
    fed["eu"].put(entry("AUT/technical"), entry("DEU/technical"))
    for node in fed.nodes.values():
        node.env[clock.ENV] = str(offset)
    try:
        fed.start()
        fed.wait_converged()
        for n in fed.nodes:
            assert _overdue(fed, n) == []
        token = run("token", "issue", "--data", fed["eu"].data, "--poc", "AUT/technical").output.strip()
        assert all(
            e["overdue"] is None and e["last_confirmed"] is None for e in _api_entries(fed, "un", token).values()
        )
        etag = _etag(fed, "un", token)
        assert _etag(fed, "un", token, etag) is None  # 304: nothing changed
        # two days later
        offset.write_text(str(2 * DAY_MS))
        assert _etag(fed, "un", token, etag) not in (None, etag)  # becoming overdue changes the answer: no 304
        later = clock.now_ms()
        for n in fed.nodes:
            listed = _overdue(fed, n)
            assert [(r["key"], r["overdue"]["reasons"]) for r in listed] == [
                ("AUT/technical", ["confirm"]),
                ("DEU/technical", ["confirm"]),
            ], (n, listed)
        assert json.loads(run("entry", "overdue", "--data", fed["osce"].data, "--json").output) != []  # its scope
        table = run("entry", "overdue", "--data", fed["eu"].data).output
        assert "AUT/technical" in table and "2 overdue entries" in table
        api = _api_entries(fed, "un", token)
        assert api["AUT/technical"]["overdue"]["reasons"] == ["confirm"]
        assert api["AUT/technical"]["last_modified"] is not None
        # the peers' head vectors must be fresh on the moved clock before the CLI signs (ADR 19)
        wait_for(lambda: _confirmed_ms(fed, "eu") >= later - 1000, 60, "a peer head vector on the moved clock")
        run("entry", "confirm", "--data", fed["eu"].data, "AUT/technical", "DEU/technical", "--author", "staff@eu")
        digest = fed.wait_converged()
        for n in fed.nodes:
            wait_for(lambda n=n: _overdue(fed, n) == [], 30, f"{n} to show no overdue entry")
            assert fed[n].digest() == digest
            assert _records(fed, n, "confirm") == [("AUT/technical", "eu"), ("DEU/technical", "eu")]
        confirmed = {n: _show(fed, n, "DEU/technical")["last_confirmed"] for n in fed.nodes}
        assert len(set(confirmed.values())) == 1 and None not in confirmed.values()
        api = _api_entries(fed, "osce", token)
        assert api["AUT/technical"]["overdue"] is None and api["AUT/technical"]["last_confirmed"] == confirmed["un"]
    finally:
        fed.stop()


def test_poc_page_shows_last_verified_and_not_verified_since_on_overdue_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PoC page in Chromium (static/freshness.js): last modified / confirmed / verified, per channel, and
    "Not verified since …" once the policy counts an entry overdue; no console error."""
    from playwright.sync_api import expect

    from tests.support.browser import browser, screenshot

    offset = tmp_path / "clock-offset-ms"
    offset.write_text("0")
    monkeypatch.setenv(clock.ENV, str(offset))
    fed = Federation(tmp_path, names=("un", "eu"))
    m2 = tmp_path / "m2.json"
    m2.write_bytes(fed.manifest.read_bytes())
    (tmp_path / "policy.json").write_text(json.dumps({"freshness": {"confirm_days": 1, "verify_days": 1}}))
    run("manifest", "set-features", m2, "--policy", tmp_path / "policy.json")
    fed.sign(m2)
    for n in fed.nodes:
        run("manifest", "install", "--data", fed[n].data, m2)
    fed["eu"].put(entry("DEU/technical", phones=["+493012345678"]), entry("AUT/technical"))
    run("check", "record", "--data", fed["eu"].data, "DEU/technical", "--channel", "phone:1", "--result", "answered")
    verified = _show(fed, "eu", "DEU/technical")["last_verified"]
    for node in fed.nodes.values():
        node.env[clock.ENV] = str(offset)
    console: list[str] = []
    try:
        fed.start()
        fed.wait_converged()
        token = run("token", "issue", "--data", fed["eu"].data, "--poc", "DEU/technical").output.strip()
        with browser() as b:
            ctx = b.new_context(locale="en-GB", timezone_id="UTC", viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.set_default_timeout(30_000)
            expect.set_options(timeout=30_000)
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
            page.goto(fed["un"].url + "/")
            page.fill("#token", token)
            page.click("#signin-btn")
            expect(page.locator("#results tbody tr")).to_have_count(2)
            page.goto(fed["un"].url + "/#/entry/DEU%2Ftechnical")
            card = page.locator("#freshness")
            expect(card).to_contain_text("Last verified")
            expect(card).to_contain_text("Telephone 1")
            expect(card).to_contain_text("Answered")
            assert page.locator("#freshness-overdue").count() == 0  # fresh today
            day = f"{int(verified[8:10])} "  # en-GB medium date in UTC: "3 Dec 2026"
            assert day in card.inner_text()
            offset.write_text(str(2 * DAY_MS))  # two days later: overdue on un's clock
            page.reload()
            expect(page.locator("#freshness-overdue")).to_contain_text("Not verified since")
            expect(page.locator("#freshness-overdue")).to_contain_text("Not confirmed by its secretariat since")
            screenshot(page, "freshness-overdue")
            page.goto(fed["un"].url + "/#/entry/AUT%2Ftechnical")
            expect(page.locator("#freshness-overdue")).to_contain_text("Never verified since it was listed.")
            expect(page.locator("#freshness")).to_contain_text("never")
    finally:
        fed.stop()
    assert console == [], console
