"""An entry's public_key (issue 17): the armored OpenPGP key is read with caps and its fingerprint is
checked at the origin; peers apply no rule to it (PROTOCOL.md §7.1); exports carry it both ways.

Keys: the RFC 9580 sample certificates (v4 and v6, with their published fingerprints) and keys made by
GnuPG here (its own fingerprint is the reference).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocsync.core import model
from pocsync.directory import exports, intake, openpgp

FIX = Path(__file__).parents[1] / "fixtures" / "openpgp"
V6 = (FIX / "rfc9580-a3-v6-cert.asc").read_text()
V6_FP = "CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9"
V4 = (FIX / "rfc9580-a1-v4-ed25519legacy.asc").read_text()
V4_FP = "C959BDBAFA32A2F89A153B678CFDE12197965A9A"
TODAY = "2026-01-01"


def entry(**over: object) -> dict:
    e = {
        "state": "DEU",
        "kind": "technical",
        "organisation": "Example CSIRT (fictional)",
        "emails": ["cert@example.org"],
        "available_24_7": True,
    }
    e.update(over)
    return e


@pytest.fixture(scope="module")
def gpg(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("gnupg")
    os.chmod(home, 0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}

    def make(uid: str, algo: str) -> tuple[str, str]:
        subprocess.run(
            ["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key", uid, algo, "sign", "never"],
            env=env,
            check=True,
            capture_output=True,
        )
        cols = subprocess.run(
            ["gpg", "--batch", "--with-colons", "--fingerprint", uid],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        fp = next(ln.split(":")[9] for ln in cols.splitlines() if ln.startswith("fpr:"))
        armored = subprocess.run(
            ["gpg", "--batch", "--armor", "--export", fp], env=env, check=True, capture_output=True, text=True
        ).stdout
        return armored, fp

    make.home = home  # type: ignore[attr-defined]
    make.env = env  # type: ignore[attr-defined]
    return make


def test_rfc9580_sample_keys_give_their_published_fingerprints() -> None:
    six = openpgp.parse(V6)
    assert (six.version, six.algorithm, six.fingerprint) == (6, "Ed25519", V6_FP)
    four = openpgp.parse(V4)
    assert (four.version, four.algorithm, four.fingerprint) == (4, "EdDSALegacy", V4_FP)


@pytest.mark.parametrize("algo,version", [("ed25519", 4), ("rsa2048", 4), ("nistp256", 4)])
def test_gnupg_keys_give_gnupgs_fingerprint(gpg, algo: str, version: int) -> None:
    armored, fp = gpg(f"Example {algo} (test) <{algo}@example.org>", algo)
    info = openpgp.parse(armored)
    assert info.fingerprint == fp and info.version == version
    clean, _ = intake.validate_entry(
        entry(public_key=armored, public_key_fingerprint=" ".join(fp[i : i + 4] for i in range(0, len(fp), 4)).lower()),
        today_iso=TODAY,
    )
    assert clean["public_key_fingerprint"] == fp
    assert openpgp.parse(clean["public_key"]).fingerprint == fp


def test_a_weak_rsa_key_is_refused(gpg) -> None:
    armored, _ = gpg("Weak (test) <weak@example.org>", "rsa1024")
    with pytest.raises(openpgp.PublicKeyError, match="1024 bits is too weak"):
        openpgp.parse(armored)


def test_a_private_key_block_is_refused(gpg) -> None:
    _, fp = gpg("Secret (test) <secret@example.org>", "ed25519")
    secret = subprocess.run(
        ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", fp],
        env=gpg.env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with pytest.raises(openpgp.PublicKeyError, match="PRIVATE key block"):
        openpgp.parse(secret)
    # the same secret packets dressed as a public block are refused by packet type
    body = secret.split("\n\n", 1)[1].rsplit("-----END", 1)[0]
    with pytest.raises(openpgp.PublicKeyError, match="secret key material|not a public key"):
        openpgp.parse(f"{openpgp.BEGIN}\n\n{body}{openpgp.END}\n")


def _armor(packets: bytes, *, checksum: bool = True) -> str:
    b64 = base64.b64encode(packets).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    tail = ["=" + base64.b64encode(openpgp._crc24(packets).to_bytes(3, "big")).decode()] if checksum else []
    return "\n".join([openpgp.BEGIN, "Comment: test", "", *lines, *tail, openpgp.END]) + "\n"


V4_PACKETS = openpgp.dearmor(V4)

BAD = [
    ("not text", 42, "must be a text"),
    ("too long", V4 + " " * 16_384, "at most 16384"),
    ("non-ASCII", V4.replace("Q+47", "Q+4é"), "printable ASCII only"),
    ("NUL", V4.replace("Q+47", "Q+4\x00"), "U+0000"),
    ("no begin", V4.split("\n", 1)[1], "must start with"),
    ("no end", V4.rsplit("-----END", 1)[0], "must end with"),
    ("message block", V4.replace("PUBLIC KEY BLOCK", "MESSAGE"), "must start with"),
    ("bad header", V4.replace("\n\n", "\nnot a header\n\n", 1), "is not 'Name: value'"),
    ("bad base64", V4.replace("Q+47", "Q!47"), "base64"),
    ("bad checksum", _armor(V4_PACKETS)[: -len(openpgp.END) - 7] + "=AAAA\n" + openpgp.END, "checksum"),
    ("empty", f"{openpgp.BEGIN}\n\n{openpgp.END}", "no data"),
    ("truncated packet", _armor(V4_PACKETS[:-3]), "longer than the data"),
    ("not a packet", _armor(b"\x01\x02\x03"), "bad header octet"),
    ("user id first", _armor(b"\xcd\x04test" + V4_PACKETS), "not a public key"),
    ("version 5", _armor(V4_PACKETS[:2] + b"\x05" + V4_PACKETS[3:]), "version 5 is not supported"),
    ("elgamal", _armor(V4_PACKETS[:7] + b"\x10" + V4_PACKETS[8:]), "algorithm 16 is not allowed"),
    ("partial length", _armor(b"\xc6\xe1" + b"\x00" * 2), "partial body lengths"),
    ("indeterminate length", _armor(b"\x9b" + V4_PACKETS[2:]), "indeterminate"),
]


@pytest.mark.parametrize("name,text,message", BAD, ids=[b[0] for b in BAD])
def test_each_malformed_key_is_refused_with_a_clear_message(name: str, text: object, message: str) -> None:
    with pytest.raises(openpgp.PublicKeyError) as err:
        openpgp.parse(text)  # type: ignore[arg-type]
    assert message in err.value.message, err.value.message
    assert err.value.reason == "bad_public_key"


def test_the_reference_armor_helper_is_right() -> None:
    assert openpgp.parse(_armor(V4_PACKETS)).fingerprint == V4_FP
    assert openpgp.parse(_armor(V4_PACKETS, checksum=False)).fingerprint == V4_FP
    assert openpgp.parse(V4.replace("\n", "\r\n")).fingerprint == V4_FP


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_any_packet_bytes_are_read_or_refused_never_crash(data: bytes, checksum: bool) -> None:
    try:
        openpgp.parse(_armor(data, checksum=checksum))
    except openpgp.PublicKeyError:
        pass


# --- at the origin: the fingerprint is checked; on receipt: nothing ---------------------------------
def test_origin_refuses_a_mismatch_and_a_key_without_fingerprint() -> None:
    clean, _ = intake.validate_entry(entry(public_key=V6, public_key_fingerprint=V6_FP.lower()), today_iso=TODAY)
    assert clean["public_key_fingerprint"] == V6_FP and clean["public_key"].endswith(openpgp.END + "\n")
    with pytest.raises(Exception) as err:
        intake.validate_entry(entry(public_key=V6, public_key_fingerprint=V4_FP), today_iso=TODAY)
    assert err.value.reason == "fingerprint_mismatch" and V6_FP in err.value.message
    with pytest.raises(Exception) as err:
        intake.validate_entry(entry(public_key=V4), today_iso=TODAY)
    assert err.value.reason == "missing_fingerprint" and V4_FP in err.value.message
    with pytest.raises(Exception) as err:
        intake.validate_entry(entry(public_key="-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxx\n"), today_iso=TODAY)
    assert err.value.reason == "bad_public_key"
    with pytest.raises(Exception) as err:
        intake.validate_entry(entry(public_key_fingerprint="1234"), today_iso=TODAY)
    assert err.value.reason == "bad_public_key" and err.value.detail["field"] == "public_key_fingerprint"
    # null means absent
    clean, _ = intake.validate_entry(entry(public_key=None, public_key_fingerprint=None), today_iso=TODAY)
    assert "public_key" not in clean and "public_key_fingerprint" not in clean


def test_peers_apply_no_rule_to_public_key() -> None:
    for value in ("not a key", 7, {"x": 1}, V4):
        model.check_structure(
            "DEU/technical",
            {**entry(public_key=value, public_key_fingerprint="nope"), "holder_epoch": "0000000000001-0000"},
            cs_hlc="1763800000000-0000",
        )


# --- exports carry it both ways ----------------------------------------------------------------------
ROWS = [
    {
        "key": "DEU/technical",
        "entry": entry(public_key=V6, public_key_fingerprint=V6_FP, holder_epoch="1763800000000-0000"),
        "origin": "eu",
        "hlc": "1763800000123-0000",
        "cs_id": "sha256:a",
        "index": 0,
        "seq": 1,
        "author": "staff",
    }
]


def test_exports_round_trip_the_public_key() -> None:
    back = exports.parse_vcards(exports.to_vcard(ROWS))[0]["entry"]
    assert back["public_key"] == V6 and back["public_key_fingerprint"] == V6_FP
    # vobject writes the data URI with vCard text escapes (\; \,) and reads it back so
    assert "KEY:data:application/pgp-keys\\;base64\\," in exports.to_vcard(ROWS).replace("\r\n ", "")
    doc = json.loads(exports.to_json(ROWS))
    assert doc["entries"][0]["entry"]["public_key"] == V6
    row = dict(zip(*list(csv.reader(io.StringIO(exports.to_csv(ROWS))))))
    assert json.loads(exports.unguard(row["extra"]))["public_key"] == V6
    # and a hostile peer's value is carried as data, never as vCard text
    hostile = [{**ROWS[0], "entry": {**ROWS[0]["entry"], "public_key": "x\r\nBEGIN:VCARD\r\nFN:evil"}}]
    text = exports.to_vcard(hostile)
    lines = text.replace("\r\n ", "").split("\r\n")
    assert lines.count("BEGIN:VCARD") == 1 and "FN:evil" not in lines
    assert exports.parse_vcards(text)[0]["entry"]["public_key"] == "x\r\nBEGIN:VCARD\r\nFN:evil"


@pytest.mark.parametrize("name", ["json", "csv", "vcard", "ldif"])
def test_every_export_format_reads_back_with_the_public_key(name: str) -> None:
    """Export with the adapter, read back and map as `entry import` does, validate at the origin again."""
    from pocsync.directory import adapters as adaptersmod

    adapter = adaptersmod.load(name)
    data = adapter.write(ROWS)
    records = [r for r in adapter.read(data, mapping=adapter.default_mapping, source=f"x.{name}") if r.error is None]
    assert len(records) == 1
    mapped = adaptersmod.map_record(records[0], adapter.default_mapping)
    assert isinstance(mapped, dict), mapped
    assert mapped.get("public_key") == V6 and mapped.get("public_key_fingerprint") == V6_FP, name
    clean, _ = intake.validate_entry(mapped, today_iso=TODAY)
    assert clean["public_key"] == V6
