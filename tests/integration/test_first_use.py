"""What a first user trips on when following README.md and docs/OPERATIONS.md (found by trying them)."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run


def test_set_features_on_a_draft_names_the_previous_and_the_new_version(tmp_path: Path) -> None:
    pw = tmp_path / "pw.txt"
    pw.write_text("a passphrase for the test root key\n")
    run("keys", "root-init", "--out", tmp_path / "root", "--passphrase-file", pw)
    m1 = tmp_path / "manifest.json"
    run("manifest", "create", "--out", m1, "--root-pub", tmp_path / "root" / "root.pub", "--threshold", "1")
    run("manifest", "sign", m1, "--key", tmp_path / "root" / "root.key", "--passphrase-file", pw)
    m2 = tmp_path / "manifest-v2.json"
    run("manifest", "next", m1, "--out", m2)  # an unsigned draft of v2, as OPERATIONS.md says
    out = " ".join(run("manifest", "set-features", m2, "--features", "freshness").output.split())
    assert "manifest v2 enables freshness" in out
    assert "roots of v1 and v2" in out
