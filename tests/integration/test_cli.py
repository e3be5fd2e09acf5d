"""The secretariat CLI, as scripts use it: commands, flags, files, exit codes, messages."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import click
import pytest

from pocsync.cli.main import cli
from tests.support.cli import ENTRIES, LocalFederation, run, sh


@pytest.fixture()
def fed(tmp_path: Path) -> LocalFederation:
    return LocalFederation(tmp_path)


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((prefix + (name,), cmd))
        if isinstance(cmd, click.Group):
            out.extend(all_commands(cmd, prefix + (name,)))
    return out


def test_every_command_has_help_text_and_every_option_is_documented() -> None:
    for path, cmd in all_commands(cli):
        assert cmd.help and cmd.help.strip(), f"pocsync {' '.join(path)} has no help text"
        for p in cmd.params:
            if isinstance(p, click.Option):
                assert p.help, f"pocsync {' '.join(path)} {p.opts[0]} has no help"
        assert run(*path, "--help").exit_code == 0


@pytest.mark.parametrize("path", [
    "keys root-init --out --passphrase-file", "init --node --data", "node-info --data",
    "manifest create --out --root-pub --threshold --expires-days",
    "manifest add-node --node-info --role --scope", "manifest next --out",
    "manifest rotate-key --node --from-seq", "manifest set-scope --node --from-seq",
    "manifest remove-node --node --from-seq", "manifest restart-chain --node --from-seq",
    "manifest add-root", "manifest remove-root", "manifest set-threshold", "manifest sign --key",
    "manifest show", "manifest install --data", "entry put --data --author", "entry delete --data",
    "entry import --data --adapter --author", "entry withdraw --data", "entry list --data", "entry show --data", "log export --data --origin --after",
    "log import --data", "log verify --data", "digest --data", "quarantine list --data",
])
def test_public_interface_names_and_flags_exist(path: str) -> None:
    words = path.split()
    cmd_words = [w for w in words if not w.startswith("--")]
    flags = [w for w in words if w.startswith("--")]
    help_text = run(*cmd_words, "--help").output
    for f in flags:
        assert f in help_text, f"pocsync {' '.join(cmd_words)} lacks {f}"


def test_keys_are_private_and_root_key_can_be_encrypted(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery staple\n")
    run("keys", "root-init", "--out", tmp_path / "root", "--passphrase-file", pw)
    key = tmp_path / "root" / "root.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
    run("init", "--node", "eu", "--data", tmp_path / "eu")
    for f in (tmp_path / "eu" / "keys").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    info = json.loads(run("node-info", "--data", tmp_path / "eu").output)
    assert info["node"] == "eu" and len(base64.b64decode(info["signing_key"]["public"])) == 32
    assert info["token_key"]["crv"] == "P-256" and "d" not in info["token_key"]
    # a signing run with the encrypted root key needs the passphrase
    (tmp_path / "eu.json").write_text(json.dumps(info))
    m = tmp_path / "m.json"
    run("manifest", "create", "--out", m, "--root-pub", tmp_path / "root" / "root.pub")
    res = run("manifest", "sign", m, "--key", key, ok=False)
    assert res.exit_code == 2 and "passphrase" in res.output
    run("manifest", "sign", m, "--key", key, "--passphrase-file", pw)
    # a key file others can read is refused
    key.chmod(0o644)
    res = run("manifest", "sign", m, "--key", key, "--passphrase-file", pw, ok=False)
    assert res.exit_code == 2 and "chmod 600" in res.output


def test_edits_sync_and_digests_converge(fed: LocalFederation) -> None:
    fed.put("eu", ENTRIES["eu"])
    fed.put("osce", ENTRIES["osce"])
    fed.sync_all()
    digests = {fed.digest(n) for n in fed.nodes}
    assert len(digests) == 1
    (d,) = digests
    assert d.startswith("sha256:") and len(d) == 71
    listing = json.loads(run("entry", "list", "--data", fed.data("un"), "--json").output)
    assert {r["key"] for r in listing} == {"AUT/technical", "AUT/diplomatic", "UKR/technical"}
    shown = json.loads(run("entry", "show", "--data", fed.data("un"), "AUT/diplomatic").output)
    assert shown["origin"] == "osce" and {v["origin"] for v in shown["versions"]} == {"eu", "osce"}
    # delete at one origin leaves the other's listing; withdraw removes it everywhere
    run("entry", "delete", "--data", fed.data("osce"), "AUT/diplomatic")
    fed.sync_all()
    shown = json.loads(run("entry", "show", "--data", fed.data("un"), "AUT/diplomatic").output)
    assert shown["origin"] == "eu"
    run("entry", "withdraw", "--data", fed.data("un"), "AUT/diplomatic")
    fed.sync_all()
    assert len({fed.digest(n) for n in fed.nodes}) == 1
    res = run("entry", "show", "--data", fed.data("eu"), "AUT/diplomatic", ok=False)
    assert res.exit_code == 2 and "not in the merged view" in res.output
    assert run("log", "verify", "--data", fed.data("eu")).output.startswith("ok: ")


def test_invalid_records_name_record_and_field_and_commit_nothing(fed: LocalFederation) -> None:
    bad = [ENTRIES["eu"][0], {**ENTRIES["eu"][1], "phones": ["+43 1"]},
           {"state": "AUT", "kind": "technical", "organisation": "X", "person": "C. Example",
            "emails": ["x@example.org"]}]
    res = fed.put("eu", bad, ok=False)
    assert res.exit_code == 2
    assert 'record 2 (AUT/diplomatic): field "phones[0]"' in res.output
    assert 'record 3 (AUT/technical): field "person"' in res.output
    assert "nothing was committed" in res.output
    assert fed.export("eu") == b""
    res = run("entry", "put", "--data", fed.data("eu"), "-", input='{"state": "AUT", "state": "DEU"}', ok=False)
    assert res.exit_code == 2 and "duplicate" in res.output


def test_import_reports_and_quarantines_bad_lines(fed: LocalFederation) -> None:
    fed.put("eu", ENTRIES["eu"])
    run("entry", "delete", "--data", fed.data("eu"), "AUT/technical")
    lines = fed.export("eu").splitlines()
    env = json.loads(lines[1])
    env["signatures"][0]["sig"] = base64.b64encode(b"\0" * 64).decode()
    payload = b"\n".join([json.dumps(env).encode(), b"{not json", lines[0]]) + b"\n"
    res = run("log", "import", "--data", fed.data("osce"), "-", input=payload, ok=False)
    assert res.exit_code == 1
    assert "bad_signature" in res.output and "malformed_json" in res.output
    q = json.loads(run("quarantine", "list", "--data", fed.data("osce"), "--json").output)
    assert sorted(x["reason"] for x in q["quarantined"]) == ["bad_signature", "malformed_json"]
    # the good line was applied; importing the real seq 2 later completes the chain
    res = run("log", "import", "--data", fed.data("osce"), "-", input=lines[1] + b"\n")
    assert "1" in res.output
    assert fed.digest("osce") == fed.digest("eu")


def test_import_exits_nonzero_on_refused_ops(fed: LocalFederation, tmp_path: Path) -> None:
    # osce's scope does not cover JPN: a hand-signed change-set with a JPN op is refused on import
    from pocsync.core import changeset as csmod
    from pocsync.nodedir import NodeDir

    nd = NodeDir.open(fed.data("osce"))
    payload = csmod.build_payload(origin="osce", seq=1, prev=None, hlc="1763800000000-0000", manifest=1,
                                  author="test", ops=[{"op": "delete", "key": "JPN/technical"}])
    env = csmod.sign(payload, keyid="osce:k1", key=nd.signing_key("k1"))
    res = run("log", "import", "--data", fed.data("eu"), "-", input=env + b"\n", ok=False)
    assert res.exit_code == 1 and "out_of_scope" in res.output
    q = json.loads(run("quarantine", "list", "--data", fed.data("eu"), "--json").output)
    assert [r["reason"] for r in q["refused"]] == ["out_of_scope"]


def test_export_filters_by_origin_and_seq(fed: LocalFederation) -> None:
    fed.put("eu", ENTRIES["eu"][:1])
    fed.put("eu", ENTRIES["eu"][1:])
    fed.put("osce", ENTRIES["osce"])
    fed.sync_all()
    all_lines = fed.export("un").splitlines()
    assert len(all_lines) == 3
    assert len(fed.export("un", "--origin", "eu").splitlines()) == 2
    after = fed.export("un", "--origin", "eu", "--after", "1").splitlines()
    assert len(after) == 1 and json.loads(base64.b64decode(json.loads(after[0])["payload"]))["seq"] == 2


def test_manifest_install_refusals_name_the_reason(fed: LocalFederation, tmp_path: Path) -> None:
    m2 = tmp_path / "m2.json"
    run("manifest", "next", fed.manifest, "--out", m2)
    res = run("manifest", "install", "--data", fed.data("eu"), m2, ok=False)
    assert res.exit_code == 2 and "threshold_not_met" in res.output
    m3 = tmp_path / "m3.json"
    run("manifest", "next", m2, "--out", m3)
    run("manifest", "sign", m3, "--key", fed.base / "root" / "root.key")
    res = run("manifest", "install", "--data", fed.data("eu"), m3, ok=False)
    assert "manifest_gap" in res.output
    res = run("manifest", "install", "--data", fed.data("eu"), fed.manifest, ok=False)
    assert "already_installed" in res.output
    run("manifest", "sign", m2, "--key", fed.base / "root" / "root.key")
    run("manifest", "install", "--data", fed.data("eu"), m2)
    res = run("manifest", "install", "--data", fed.data("eu"), fed.manifest, ok=False)
    assert "manifest_rollback" in res.output
    show = run("manifest", "show", m2, "--json").output
    assert json.loads(show)["version"] == 2


def test_manifest_edit_commands_change_the_history(fed: LocalFederation, tmp_path: Path) -> None:
    m2 = tmp_path / "m2.json"
    run("manifest", "next", fed.manifest, "--out", m2)
    newkey = json.loads(run("keys", "new-signing", "--data", fed.data("eu"), "--name", "k2").output)
    (tmp_path / "k2.json").write_text(json.dumps(newkey))
    run("manifest", "rotate-key", m2, "--node", "eu", "--from-seq", "5", "--key-info", tmp_path / "k2.json")
    run("manifest", "set-scope", m2, "--node", "osce", "--from-seq", "3", "--scope", "AUT,UKR")
    run("manifest", "remove-node", m2, "--node", "un", "--from-seq", "10")
    k3 = json.loads(run("keys", "new-signing", "--data", fed.data("osce"), "--name", "k3").output)
    run("manifest", "restart-chain", m2, "--node", "osce", "--from-seq", "20", "--name", "k3",
        "--public", k3["signing_key"]["public"])
    run("keys", "root-init", "--out", tmp_path / "root2")
    run("manifest", "add-root", m2, "--root-pub", tmp_path / "root2" / "root.pub")
    run("manifest", "set-threshold", m2, "--threshold", "2")
    p = json.loads(run("manifest", "show", m2, "--json").output)
    eu = p["nodes"]["eu"]["signing_keys"]
    assert [(k["name"], k["from_seq"], k["until_seq"]) for k in eu] == [("k1", 1, 4), ("k2", 5, None)]
    assert p["nodes"]["osce"]["scope"][-1] == {"from_seq": 3, "states": ["AUT", "UKR"]}
    assert p["nodes"]["un"]["removed_at_seq"] == 9
    assert p["nodes"]["osce"]["restarts"] == [{"seq": 20, "prev": None}]
    assert p["threshold"] == 2 and len(p["roots"]) == 2
    run("manifest", "sign", m2, "--key", fed.base / "root" / "root.key")
    res = run("manifest", "install", "--data", fed.data("eu"), m2, ok=False)
    assert "threshold_not_met" in res.output  # v2's own threshold is 2
    run("manifest", "sign", m2, "--key", tmp_path / "root2" / "root.key")
    run("manifest", "install", "--data", fed.data("eu"), m2)
    res = run("manifest", "remove-root", m2, "--root-pub", tmp_path / "root2" / "root.pub", ok=False)
    assert res.exit_code == 2 and "threshold 2 exceeds the 1 root keys" in res.output
    res = run("manifest", "set-threshold", m2, "--threshold", "1")  # any edit drops the signatures
    assert "removed 2 signature(s)" in res.output
    assert "NOT enough" in run("manifest", "show", m2).output


def test_console_script_runs_as_a_real_process(tmp_path: Path) -> None:
    proc = sh("--help")
    assert b"Points of Contact" in proc.stdout
    proc = sh("digest", "--data", tmp_path / "nowhere", check=False)
    assert proc.returncode == 2 and b"pocsync init" in proc.stderr
    assert b"Traceback" not in proc.stderr


def test_cli_reference_is_up_to_date(monkeypatch: pytest.MonkeyPatch) -> None:
    from pocsync.cli import docs

    monkeypatch.setenv("COLUMNS", "100")
    current = (Path(__file__).parents[2] / "docs" / "CLI.md").read_text()
    assert current == docs.render(), "docs/CLI.md is stale: run `python -m pocsync.cli.docs > docs/CLI.md`"


def test_sync_toml_example_documents_every_key(tmp_path: Path) -> None:
    from dataclasses import fields

    from pocsync import config

    example = Path(__file__).parents[2] / "sync.toml.example"
    cfg = config.load(example)
    text = example.read_text()
    for section in (config.NodeConfig, config.LimitsConfig, config.ApiConfig, config.MqttConfig, config.SyncConfig,
                    config.LogConfig):
        for f in fields(section):
            assert f"\n{f.name} = " in text, f"sync.toml.example lacks {f.name}"
    assert cfg.node.id == "eu" and cfg.limits.core().max_clock_skew_ms == 300_000
    bad = tmp_path / "sync.toml"
    bad.write_text(text.replace("max_envelope_bytes", "max_envelope_byte"))
    with pytest.raises(Exception, match="unknown key"):
        config.load(bad)


def test_independent_verifier_accepts_exported_change_sets(fed: LocalFederation) -> None:
    """`log export` output verified by tests/independent/dsse_verify.py with keys read from the manifest
    file by hand (json + base64 only), not through pocsync's parser."""
    from tests.independent import dsse_verify

    fed.put("eu", ENTRIES["eu"])
    fed.put("osce", ENTRIES["osce"])
    fed.sync_all()
    manifest_env = json.loads(fed.manifest.read_text())
    payload = json.loads(base64.b64decode(manifest_env["payload"]))
    keys = {f"{node}:{k['name']}": base64.b64decode(k["public"])
            for node, info in payload["nodes"].items() for k in info["signing_keys"]}
    lines = fed.export("un").splitlines()
    assert len(lines) == 2
    prev_by_origin: dict[str, str] = {}
    for line in lines:
        ptype, body = dsse_verify.verify(line, keys)
        assert ptype == "application/vnd.pocsync.changeset+json"
        cs = json.loads(body)
        assert cs["prev"] == prev_by_origin.get(cs["origin"])
        prev_by_origin[cs["origin"]] = dsse_verify.changeset_id(body)
    forged = json.loads(lines[0])
    forged["signatures"][0]["keyid"] = "osce:k1"
    with pytest.raises(ValueError):
        dsse_verify.verify(json.dumps(forged), keys)


def test_manifest_features_create_set_features_and_install_refusal(fed: LocalFederation, tmp_path: Path) -> None:
    from pocsync.core import manifest as mf
    from pocsync.core import opkinds

    # `manifest create` listed every feature of this software; the nodes installed it
    assert json.loads(run("manifest", "show", fed.manifest, "--json").output)["features"] == sorted(opkinds.FEATURES)
    # set-features on a signed version writes the next version, unsigned
    m2 = tmp_path / "m2.json"
    m2.write_bytes(fed.manifest.read_bytes())
    res = run("manifest", "set-features", m2, "--features", "")
    assert "v2" in res.output
    shown = json.loads(run("manifest", "show", m2, "--json").output)
    assert shown["version"] == 2 and "features" not in shown
    res = run("manifest", "set-features", m2, "--features", "toy-note,held-changes", ok=False)
    assert res.exit_code == 2 and "held-changes" in res.output and "Traceback" not in res.output
    assert json.loads(run("manifest", "show", m2, "--json").output)["version"] == 2  # nothing written
    run("manifest", "set-features", fed.manifest, "--features", "toy-note", "--out", tmp_path / "alt.json",
        ok=False)  # v1 already enables exactly these
    res = run("manifest", "set-features", m2, "--features", "toy-note", "--out", m2, ok=False)
    assert res.exit_code == 2 and "exists" in res.output
    run("manifest", "sign", m2, "--key", fed.base / "root" / "root.key")
    run("manifest", "install", "--data", fed.data("eu"), m2)
    run("manifest", "set-features", m2, "--features", "toy-note", "--out", tmp_path / "m2b.json")
    assert json.loads(run("manifest", "show", tmp_path / "m2b.json", "--json").output)["version"] == 3
    assert json.loads(run("manifest", "show", m2, "--json").output)["version"] == 2  # FILE untouched
    # a manifest naming a feature this software lacks (made by a newer tool) is refused at install
    m3 = mf.set_features(mf.next_version(mf.parse(m2.read_bytes()).payload), ["held-changes"])
    (tmp_path / "m3.json").write_text(json.dumps(mf.unsigned(m3).envelope.to_json()))
    run("manifest", "sign", tmp_path / "m3.json", "--key", fed.base / "root" / "root.key")
    res = run("manifest", "install", "--data", fed.data("eu"), tmp_path / "m3.json", ok=False)
    assert res.exit_code != 0 and "unsupported_feature" in res.output and "held-changes" in res.output
    assert "this pocsync lacks: held-changes" in run("manifest", "show", tmp_path / "m3.json").output
