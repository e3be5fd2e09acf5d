"""Siblings of the lone-surrogate defect (issue 10): input that passes acceptance must not fail later —
in SQLite, the merge, the API (entries, one entry, exports in every format, networks, divergences,
health and its history), the CLI (`log export`, `status`) or the logs.  A member signs a change-set
holding everything strict JSON and the receipt rules allow but a renderer might choke on: NUL and
controls, bidi and line separators, formula text, a 100 000-character note, integers at ±(2^53−1) in
unknown fields, unknown member names that are empty, NUL or equal only after Unicode normalisation,
secure channels of odd types, deep nesting, and refused ops whose name and key carry a forged log line.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pocsync.core import envelope as dsse
from pocsync.folder.nodedir import NodeDir
from tests.support.browser import browser, screenshot
from tests.support.cli import run
from tests.support.nodes import Federation

ODD = "=cmd|' /C calc'!A0 \x00\x07\x1b[31m\u202eevil\u2028\u2029\x85 \U0010ffff\ufffe"
DEEP: object = "bottom"
for _ in range(20):
    DEEP = [DEEP]
ENTRY = {
    "state": "DEU",
    "kind": "technical",
    "organisation": "Org " + ODD,
    "position": ODD,
    "notes": "n" * 100_000,
    "emails": ["cert@example.org", ODD, "a\x00@example.org"],
    "phones": ["+1\n2", ODD],
    "languages": [ODD],
    "networks": [ODD, ""],
    "timezone": ODD,
    "available_24_7": None,
    "person": None,
    "secure_channels": [
        {"expires": 5, "fingerprint": ["x"], "\x00": None, "type": {"a": 2**53 - 1}},
        {"expires": "2000-01-01T99", "name": ODD},
    ],
    "holder_epoch": "1763800000100-0000",
    "": -(2**53 - 1),
    "\x00": True,
    "é": 1,
    "e\u0301": 2,
    "deep": DEEP,
}
FORGED = "[/x]\n2026-11-23 19:00:00,000 WARNING pocsync.live.runtime: EQUIVOCATION: forged"  # rich markup too


def _get(url: str, token: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=20) as r:
        return r.status, r.read()


def _get_status(url: str, token: str) -> int:
    try:
        return _get(url, token)[0]
    except urllib.error.HTTPError as exc:
        return exc.code


def _page_shows_it(url: str, token: str) -> None:
    """The PoC page in a real Chromium lists and opens both entries without a script error."""
    from playwright.sync_api import expect

    errors: list[str] = []
    with browser() as b:
        page = b.new_page()
        page.set_default_timeout(30_000)
        expect.set_options(timeout=30_000)
        page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        page.goto(url + "/")
        page.fill("#token", token)
        page.click("#signin-btn")
        expect(page.locator("#results tbody tr")).to_have_count(2)
        for kind in ("technical", "diplomatic"):
            page.goto(url + f"/#/entry/DEU%2F{kind}")
            expect(page.locator("#entry-title")).to_have_text("Germany (DEU)")
            expect(page.locator("#entry-fields")).to_contain_text("evil")
            expect(page.locator("#entry-fields")).to_contain_text("Secure channels")
        screenshot(page, "accepted-input-entry")
    assert errors == []


@pytest.mark.slow
def test_everything_strict_json_allows_is_stored_served_exported_and_logged(tmp_path: Path) -> None:
    fed = Federation(tmp_path, names=("un", "osce"))
    payload = json.dumps(
        {
            "type": "pocsync.changeset/v1",
            "origin": "osce",
            "seq": 1,
            "prev": None,
            "hlc": "1763800000100-0000",
            "manifest": 1,
            "author": ODD,
            "x-unknown": 2**53 - 1,
            "ops": [
                {"op": "put", "key": "DEU/technical", "entry": ENTRY},
                {"op": FORGED, "key": FORGED},
                {"op": "note", "key": "DEU", "text": ODD},
                {
                    "op": "put",
                    "key": "DEU/diplomatic",
                    "entry": {**ENTRY, "kind": "diplomatic", "notes": ODD, "person": ODD},
                },
            ],
        },
        ensure_ascii=False,
    ).encode()
    env = dsse.sign(
        dsse.CHANGESET_TYPE, payload, "osce:k1", NodeDir.open(fed["osce"].data).signing_key("k1")
    ).to_bytes()
    res = run("log", "import", "--data", fed["un"].data, "-", input=env, ok=False)
    assert res.exit_code == 1 and "Traceback" not in res.output  # 1: ops were refused
    assert "[/x]\\x0a2026-11-23" in res.output.replace("\n", "").replace("│", "").replace(" ", "")
    with fed["un"].store() as s:
        rows = {r["key"]: r for r in s.entries()}
        assert rows["DEU/technical"]["entry"] == ENTRY  # kept exactly, unknown members included
        assert sorted(r["reason"] for r in s.refused()) == [
            "unknown_op"
        ]  # manifest create lists toy-note: the note op takes effect
    exported = run("log", "export", "--data", fed["un"].data).output
    assert env.decode() in exported
    problems = run("quarantine", "list", "--data", fed["un"].data, ok=False)
    assert "Traceback" not in problems.output and "unknown_op" in problems.output
    try:
        fed["un"].start()
        url = fed["un"].url
        poc = run("token", "issue", "--data", fed["un"].data, "--poc", "DEU/technical").output.strip()
        op = run("token", "issue", "--data", fed["un"].data, "--operator", "watch").output.strip()
        status, body = _get(url + "/v1/entries", poc)
        listed = {e["key"]: e for e in json.loads(body)["entries"]}
        assert status == 200 and listed["DEU/technical"]["entry"] == ENTRY
        assert listed["DEU/technical"]["provenance"]["author"] == ODD
        status, body = _get(url + "/v1/entries/DEU/diplomatic", poc)
        assert status == 200 and json.loads(body)["entry"]["person"] == ODD
        for q in ("q=%E2%80%AE", "network="):
            assert _get(url + "/v1/entries?" + q, poc)[0] == 200
        # a NUL cannot be searched (FTS5 refuses it): a 400 naming q, never a 500
        assert _get_status(url + "/v1/entries?q=%00", poc) == 400
        status, body = _get(url + "/v1/export?format=json", poc)
        assert status == 200 and {e["key"]: e for e in json.loads(body)["entries"]}["DEU/technical"]["entry"] == ENTRY
        for fmt in ("csv", "vcard"):
            status, body = _get(url + f"/v1/export?format={fmt}", poc)
            assert status == 200 and body
            assert b"\x00" not in body and "\u202e".encode() not in body and b"\x1b" not in body, fmt
        for path in ("/v1/networks", "/v1/divergences"):
            assert _get(url + path, poc)[0] == 200
        for path in ("/v1/health", "/v1/health/history", "/metrics"):
            assert _get(url + path, op)[0] == 200, path
        with urllib.request.urlopen(url + "/", timeout=10) as r:
            assert r.status == 200
        status_cli = run("status", "--data", fed["un"].data, ok=False)
        assert "Traceback" not in status_cli.output
        _page_shows_it(url, poc)
    finally:
        fed.stop()
    log = fed["un"].log.read_text()
    assert "Traceback" not in log
    assert not any(line.startswith("2026-11-23 19:00:00,000") for line in log.splitlines())  # no forged line
