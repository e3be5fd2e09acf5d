"""`pocsync manifest publish` never replaces the broker's retained manifest with an older version (an operator
publishing v1 after v2 by mistake would hand every node that subscribes later a stale manifest)."""

from __future__ import annotations

from pathlib import Path

from tests.support.broker import Mosquitto
from tests.support.cli import run


def test_publish_refuses_to_replace_a_newer_retained_manifest(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        pw = tmp_path / "pw.txt"
        pw.write_text("correct horse battery staple\n")
        run("keys", "root-init", "--out", tmp_path / "root", "--passphrase-file", pw)
        v1, v2 = tmp_path / "m1.json", tmp_path / "m2.json"
        run("manifest", "create", "--out", v1, "--root-pub", tmp_path / "root" / "root.pub", "--threshold", "1")
        run("manifest", "sign", v1, "--key", tmp_path / "root" / "root.key", "--passphrase-file", pw)
        run("manifest", "next", v1, "--out", v2)
        run("manifest", "sign", v2, "--key", tmp_path / "root" / "root.key", "--passphrase-file", pw)
        assert "published manifest v2" in run("manifest", "publish", v2, "--mqtt", broker.url).output
        res = run("manifest", "publish", v1, "--mqtt", broker.url, ok=False)
        assert res.exit_code == 2, res.output
        assert "holds manifest v2" in res.stderr and "nothing was published" in res.stderr, res.stderr
        assert "published manifest v2" in run("manifest", "publish", v2, "--mqtt", broker.url).output  # same: fine
    finally:
        broker.stop()
