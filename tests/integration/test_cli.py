"""The secretariat CLI, as scripts use it: commands, flags, files, exit codes, messages."""

from __future__ import annotations

import base64
import json
import stat
import time
from pathlib import Path

import click
import pytest

from pocsync.cli.main import cli
from pocsync.folder.nodedir import NodeDir
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


@pytest.mark.parametrize(
    "path",
    [
        "keys root-init --out --passphrase-file",
        "init --node --data",
        "node-info --data",
        "manifest create --out --root-pub --threshold --expires-days",
        "manifest add-node --node-info --role --scope",
        "manifest next --out",
        "manifest rotate-key --node --from-seq",
        "manifest set-scope --node --from-seq",
        "manifest remove-node --node --from-seq",
        "manifest restart-chain --node --from-seq",
        "manifest add-root",
        "manifest remove-root",
        "manifest set-threshold",
        "manifest sign --key",
        "manifest show",
        "manifest install --data",
        "entry put --data --author",
        "entry delete --data",
        "entry import --data --adapter --author",
        "entry withdraw --data",
        "entry list --data",
        "entry show --data",
        "log export --data --origin --after",
        "log import --data",
        "log verify --data",
        "digest --data",
        "quarantine list --data",
        "snapshot create --data --out --passphrase-file --generate-passphrase --recipient",
        "snapshot verify --root-pub --passphrase-file --identity --json",
        "snapshot render --passphrase-file --identity --html --root-pub",
        "snapshot keygen --out",
        "history show --data --json",
        "history bundle --data --out",
    ],
)
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
    bad = [
        ENTRIES["eu"][0],
        {**ENTRIES["eu"][1], "phones": ["+43 1"]},
        {"state": "AUT", "kind": "technical", "organisation": "X", "person": "C. Example", "emails": ["x@example.org"]},
    ]
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
    from pocsync.folder.nodedir import NodeDir

    nd = NodeDir.open(fed.data("osce"))
    payload = csmod.build_payload(
        origin="osce",
        seq=1,
        prev=None,
        hlc="1763800000000-0000",
        manifest=1,
        author="test",
        ops=[{"op": "delete", "key": "JPN/technical"}],
    )
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
    run(
        "manifest",
        "restart-chain",
        m2,
        "--node",
        "osce",
        "--from-seq",
        "20",
        "--name",
        "k3",
        "--public",
        k3["signing_key"]["public"],
    )
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

    from pocsync.folder import config

    example = Path(__file__).parents[2] / "sync.toml.example"
    cfg = config.load(example)
    text = example.read_text()
    for section in (
        config.NodeConfig,
        config.LimitsConfig,
        config.ApiConfig,
        config.MqttConfig,
        config.SyncConfig,
        config.LogConfig,
        config.HeldConfig,
        config.ChecksConfig,
    ):
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
    keys = {
        f"{node}:{k['name']}": base64.b64decode(k["public"])
        for node, info in payload["nodes"].items()
        for k in info["signing_keys"]
    }
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


def test_the_origin_refuses_to_sign_what_peers_would_refuse(fed: LocalFederation, tmp_path: Path) -> None:
    """eu's scope is AUT,DEU,FRA,ITA: an out-of-scope record, withdraw or delete commits and signs nothing."""
    res = fed.put("eu", [ENTRIES["eu"][0], {**ENTRIES["osce"][1]}], ok=False)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "refused record 2 (put UKR/technical): out_of_scope: UKR is outside the scope of eu at seq 1" in res.output
    assert "nothing was committed" in res.output
    for cmd in ("withdraw", "delete"):
        res = run("entry", cmd, "--data", fed.data("eu"), "UKR/diplomatic", ok=False)
        assert res.exit_code == 2 and "out_of_scope" in res.output and "nothing was committed" in res.output
    assert fed.export("eu") == b""
    # the scope is judged at the next seq: after a manifest narrowing eu to AUT from seq 2, DEU is refused
    fed.put("eu", [ENTRIES["eu"][0]])
    m2 = tmp_path / "m2.json"
    run("manifest", "next", fed.manifest, "--out", m2)
    run("manifest", "set-scope", m2, "--node", "eu", "--from-seq", "2", "--scope", "AUT")
    run("manifest", "sign", m2, "--key", fed.base / "root" / "root.key")
    run("manifest", "install", "--data", fed.data("eu"), m2)
    deu = {**ENTRIES["eu"][0], "state": "DEU", "timezone": "Europe/Berlin"}
    res = fed.put("eu", [deu], ok=False)
    assert res.exit_code == 2 and "DEU is outside the scope of eu at seq 2" in res.output
    assert len(fed.export("eu").splitlines()) == 1
    fed.put("eu", [ENTRIES["eu"][1]])
    run("manifest", "install", "--data", fed.data("osce"), m2)
    fed.sync_all()  # what eu signed, every peer applies without refusal
    assert json.loads(run("quarantine", "list", "--data", fed.data("osce"), "--json").output)["refused"] == []


# --- every command, given wrong inputs: one line, a reason, a non-zero exit, nothing committed -------------
def _wrong_inputs(fed: LocalFederation, w: Path) -> list[tuple[list[str], str]]:
    """(argv, a fragment the one error line must hold) for every command of the CLI."""
    eu, nowhere = fed.data("eu"), w / "nowhere"
    root = fed.base / "root"
    from tests.support.broker import free_port

    (w / "array.json").write_text(json.dumps([json.loads((fed.base / "eu.info.json").read_text())]))
    (w / "table.csv").write_text("node,organisation\neu,EU\n")
    (w / "garbage.json").write_text("{not json")
    (w / "empty").write_text("")
    (w / "bad.json").write_text(json.dumps([{**ENTRIES["eu"][0], "phones": ["+43 1"]}]))
    (w / "ukr.json").write_text(json.dumps(ENTRIES["osce"][1]))
    (w / "binary.bin").write_bytes(b"\xff\xfe\x00garbage")
    (w / "wrong-pw").write_text("not the passphrase\n")
    from pocsync.directory.shipped_templates import paths as template_paths

    no_es = json.loads(template_paths()[0].read_text())
    del no_es["languages"]["es"]
    (w / "tpl-no-es.json").write_text(json.dumps(no_es))
    (w / "pw600").write_text("a passphrase of twenty characters or more\n")
    (w / "pw600").chmod(0o600)
    m = fed.manifest
    return [
        (["keys", "root-init", "--out", root], "exists"),
        (["keys", "root-init", "--out", w / "r2", "--passphrase-file", w / "empty"], "is empty"),
        (["keys", "new-signing", "--data", eu, "--name", "k1"], "exists"),
        (["keys", "new-signing", "--data", nowhere, "--name", "k2"], "pocsync init"),
        (["init", "--node", "EU!", "--data", w / "n1"], "node id"),
        (["init", "--node", "n2", "--data", w / "n2", "--listen", "0.0.0.0:8443"], "--public-url"),
        (["init", "--node", "n3", "--data", w / "n3", "--listen", "localhost"], "HOST:PORT"),
        (
            ["init", "--node", "n4", "--data", w / "n4", "--tls-cert", w / "garbage.json"],
            "both --tls-cert and --tls-key",
        ),
        (
            ["init", "--node", "n5", "--data", w / "n5", "--tls-cert", w / "garbage.json", "--tls-key", w / "empty"],
            "do not load",
        ),
        (["init", "--node", "n6", "--data", w / "n6", "--peer", "http://0.0.0.0:8443"], "wildcard"),
        (["init", "--node", "n7", "--data", w / "n7", "--mqtt", "http://broker"], "mqtt://"),
        (["init", "--node", "eu", "--data", eu], "already holds a node"),
        (["node-info", "--data", nowhere], "pocsync init"),
        (["node-info", "--data", eu, "--key", "k9"], "no signing key 'k9'"),
        (["entry", "put", "--data", eu, w / "missing.json"], "not found"),
        (["entry", "put", "--data", eu, w / "table.csv"], "entry import"),
        (["entry", "put", "--data", eu, w / "garbage.json"], "malformed"),
        (["entry", "put", "--data", eu, w / "binary.bin"], "not UTF-8"),
        (["entry", "put", "--data", eu, w / "bad.json"], "nothing was committed"),
        (["entry", "put", "--data", eu, w / "ukr.json"], "outside the scope of eu"),
        (["entry", "put", "--data", eu, w], "is a folder"),
        (["entry", "put", "--data", eu, "-"], "malformed"),
        (["entry", "import", "--data", eu, w / "table.csv", "--adapter", "nope"], "nope"),
        (["entry", "import", "--data", eu, w / "table.csv", "--adapter", "csv"], "CSV header not recognised"),
        (["entry", "import", "--data", eu, w / "array.json", "--adapter", "csv"], "holds JSON, not CSV"),
        (
            ["entry", "import", "--data", eu, w / "table.csv", "--adapter", "csv", "--mapping", w / "garbage.json"],
            "mapping file",
        ),
        (["adapters", "--nope"], "--nope"),
        (["bench", "--only", "nope"], "unknown family nope"),
        (["bench", "--quick", "--out", w / "no-such-folder" / "r.json"], "is not a folder"),
        (["manifest", "set-features", fed.manifest, "--features", "no-such-feature"], "no-such-feature"),
        (["export", "--data", eu, "--format", "csv", "--states", "XYZ"], "XYZ not ISO 3166-1 alpha-3"),
        (["entry", "delete", "--data", eu, "AUT-technical"], "key"),
        (["entry", "delete", "--data", eu, "UKR/technical"], "outside the scope"),
        (["entry", "delete", "--data", eu, "ITA/diplomatic"], "eu does not list ITA/diplomatic: nothing to delete"),
        (["entry", "withdraw", "--data", eu, "ITA/consular"], "key"),
        (["entry", "withdraw", "--data", eu, "JPN/diplomatic"], "outside the scope"),
        (["entry", "list", "--data", nowhere], "pocsync init"),
        (["entry", "show", "--data", eu, "AUT/technical"], "not in the merged view"),
        (["log", "export", "--data", eu, "--after", "-1"], "--after"),
        (["log", "import", "--data", eu, w / "missing.jsonl"], "not found"),
        (["log", "verify", "--data", nowhere], "pocsync init"),
        (["digest", "--data", nowhere], "pocsync init"),
        (["quarantine", "list", "--data", nowhere], "pocsync init"),
        (["run", "--data", nowhere], "pocsync init"),
        (["run"], "--data"),
        (["run", "--config", w / "garbage.json"], "garbage.json"),
        (["recover", "--data", eu, "--peer", "not a url"], "not a url"),
        (["recover", "--data", eu, "--peer", f"http://127.0.0.1:{free_port()}"], "cannot recover"),
        (["audit", "--data", eu, "--limit", "0"], "--limit"),
        (["export", "--data", eu, "--format", "xml"], "--format"),
        (["demo", "--duration", "0"], "--duration"),
        (["manifest", "create", "--out", m, "--root-pub", root / "root.pub"], "exists"),
        (["manifest", "create", "--out", w / "m.json", "--root-pub", root / "root.key"], "is a private key"),
        (["manifest", "create", "--out", w / "m.json", "--root-pub", w / "garbage.json"], "root public key"),
        (
            ["manifest", "add-node", m, "--node-info", w / "array.json", "--role", "regional", "--scope", "AUT"],
            "JSON array",
        ),
        (
            ["manifest", "add-node", m, "--node-info", w / "table.csv", "--role", "regional", "--scope", "AUT"],
            "looks like CSV",
        ),
        (
            [
                "manifest",
                "add-node",
                m,
                "--node-info",
                fed.base / "eu.info.json",
                "--role",
                "regional",
                "--scope",
                "AUT,XYZ",
            ],
            "XYZ is not an ISO 3166-1 alpha-3",
        ),
        (
            [
                "manifest",
                "add-node",
                m,
                "--node-info",
                fed.base / "eu.info.json",
                "--role",
                "regional",
                "--scope",
                "AUT",
            ],
            "already in the manifest",
        ),
        (
            [
                "manifest",
                "add-node",
                w / "garbage.json",
                "--node-info",
                fed.base / "eu.info.json",
                "--role",
                "regional",
                "--scope",
                "AUT",
            ],
            "garbage.json",
        ),
        (["manifest", "next", m, "--out", m], "exists"),
        (
            ["manifest", "rotate-key", m, "--node", "nope", "--from-seq", "2", "--name", "k2", "--public", "AAAA"],
            "nope",
        ),
        (
            ["manifest", "rotate-key", m, "--node", "eu", "--from-seq", "2", "--key-info", w / "array.json"],
            "JSON array",
        ),
        (["manifest", "set-scope", m, "--node", "eu", "--from-seq", "2", "--scope", "AUT,XYZ"], "XYZ"),
        (["manifest", "set-scope", m, "--node", "eu", "--from-seq", "2", "--scope", "AUT,XY"], "'XY'"),
        (["manifest", "set-scope", m, "--node", "nope", "--from-seq", "2", "--scope", "AUT"], "nope"),
        (["manifest", "remove-node", m, "--node", "nope", "--from-seq", "2"], "nope"),
        (["manifest", "restart-chain", m, "--node", "eu", "--from-seq", "2"], "--key-info"),
        (["manifest", "add-root", m, "--root-pub", w / "binary.bin"], "UTF-8"),
        (["manifest", "remove-root", m], "--root-pub"),
        (["manifest", "set-threshold", m, "--threshold", "5"], "threshold"),
        (["manifest", "sign", m, "--key", root / "root.pub"], "is a public key"),
        (["manifest", "sign", m, "--key", fed.data("eu") / "keys" / "sealing.key"], "X25519"),
        (["manifest", "show", w / "garbage.json"], "garbage.json"),
        (["manifest", "install", "--data", eu, w / "garbage.json"], "garbage.json"),
        (["manifest", "install", "--data", eu, m], "already_installed"),
        (["manifest", "publish", m, "--mqtt", "http://broker"], "mqtt://"),
        (["status", "--url", "nowhere", "--token", w / "empty"], "--url"),
        (["status", "--url", "http://127.0.0.1:9", "--token", w / "empty"], "does not hold a token"),
        (["snapshot", "create", "--data", eu, "--out", w / "s.age"], "exactly one of"),
        (
            ["snapshot", "create", "--data", nowhere, "--out", w / "s.age", "--passphrase-file", w / "pw600"],
            "pocsync init",
        ),
        (["snapshot", "create", "--data", eu, "--out", w / "s.age", "--recipient", "not-an-age-key"], "age public key"),
        (
            ["snapshot", "create", "--data", eu, "--out", w / "s.age", "--passphrase-file", w / "wrong-pw"],
            "readable by others",
        ),
        (
            [
                "snapshot",
                "verify",
                w / "garbage.json",
                "--root-pub",
                root / "root.pub",
                "--passphrase-file",
                w / "pw600",
            ],
            "not an age-encrypted",
        ),
        (["snapshot", "verify", w / "garbage.json", "--root-pub", root / "root.pub"], "exactly one of"),
        (
            ["snapshot", "render", w / "missing.age", "--passphrase-file", w / "pw600", "--html", w / "o.html"],
            "not found",
        ),
        (
            ["snapshot", "render", w / "garbage.json", "--identity", w / "pw600", "--html", w / "o.html"],
            "not an age secret key",
        ),
        (["snapshot", "keygen", "--out", w / "pw600"], "exists"),
        (["history", "show", "--data", eu, "DE"], "alpha-3"),
        (["history", "show", "--data", nowhere, "DEU"], "pocsync init"),
        (["history", "bundle", "--data", eu, "DEU", "--out", w / "pw600"], "exists"),
        (["token", "issue", "--data", eu], "exactly one of"),
        (["token", "issue", "--data", eu, "--poc", "AUT/technical"], "not a live entry"),
        (["token", "issue", "--data", eu, "--poc", "AUT"], "key"),
        (["token", "issue", "--data", eu, "--operator", "ops", "--send"], "--send"),
        (["token", "issue", "--data", eu, "--poc", "DEU/technical", "--send"], "no [smtp] section"),
        (["check", "start", "--data", eu, "--deadline", "2w"], "duration"),
        (["check", "start", "--data", eu, "--deadline", "48h", "--states", "XY"], "alpha-3"),
        (["check", "start", "--data", eu, "--deadline", "48h"], "[smtp]"),
        (["check", "status", "--data", nowhere], "pocsync init"),
        (["check", "status", "--data", eu, "--campaign", "nope"], "no campaign"),
        (["template", "publish", "--data", eu, template_paths()[0]], "eu may not publish templates"),
        (["template", "publish", "--data", fed.data("un"), w / "garbage.json"], "malformed"),
        (["template", "publish", "--data", fed.data("un"), w / "tpl-no-es.json"], "missing: ['es']"),
        (["template", "publish", "--data", fed.data("un")], "--shipped"),
        (["template", "list", "--data", nowhere], "pocsync init"),
        (["template", "show", "--data", eu, "no-such-template"], "no template 'no-such-template'"),
        (["template", "show", "--data", eu, "Bad Id"], "template id"),
        (["template", "publishers", m, "--nodes", "un,nope"], "nope is not a node"),
        (["template", "publishers", m], "--default"),
        (
            ["check", "record", "--data", eu, "AUT/technical", "--channel", "phone:1", "--result", "answered"],
            "not in the merged view",
        ),
        (["check", "record", "--data", eu, "AUT/tech", "--channel", "phone:1", "--result", "answered"], "key"),
        (["check", "record", "--data", eu, "AUT/technical", "--channel", "fax:1", "--result", "nope"], "--result"),
        (["entry", "confirm", "--data", eu, "AUT/tech"], "key"),
        (["entry", "confirm", "--data", eu, "AUT/technical"], "not in the merged view"),
        (["entry", "overdue", "--data", nowhere], "pocsync init"),
        # held contact changes (issue 16)
        (["entry", "pending", "--data", nowhere], "pocsync init"),
        (["entry", "pending", "--data", eu, "--values"], "--values goes with --json"),
        (["entry", "approve", "--data", eu, "AUT/technical", "--author", "x"], "does not enable held-changes"),
        (
            ["entry", "approve", "--data", eu, "AUT/technical", "--author", "x", "--staff-key", w / "empty"],
            "--staff-name",
        ),
        (["entry", "object", "--data", eu, "AUT/technical"], "--author"),
        (["entry", "release", "--data", nowhere, "AUT/technical", "--author", "x"], "pocsync init"),
        (["keys", "staff-init", "--out", w / "staff", "--name", "bad name!"], "--name"),
        (
            ["manifest", "staff-key", m, "--node", "eu", "--name", "alice", "--public-file", root / "root.pub"],
            "does not enable held-changes",
        ),
        (["manifest", "set-hold", m, "--seconds", "0"], "--seconds"),
    ]


def _snapshot(fed: LocalFederation, extra: Path) -> dict[str, object]:
    """What a wrong input must not change: each node's log, view, quarantine and audit; every other file."""
    import hashlib

    out: dict[str, object] = {}
    for n in fed.nodes:
        with NodeDir.open(fed.data(n)).store() as s:
            m = s.manifest()
            out[n] = (
                b"".join(s.export()),
                s.digest(),
                m.version if m else None,
                s.quarantined(),
                s.refused(),
                s.audit_log(1000),
            )
    for base in (fed.base, extra):
        for f in sorted(base.rglob("*")):
            if f.is_file() and "store.sqlite" not in f.name:
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def test_every_command_given_wrong_inputs_says_one_line_and_commits_nothing(
    fed: LocalFederation, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    w = tmp_path / "wrong"
    w.mkdir()
    cases = _wrong_inputs(fed, w)
    covered = {tuple(str(a) for a in argv[:2]) for argv, _ in cases} | {(str(argv[0]),) for argv, _ in cases}
    for path, cmd in all_commands(cli):
        if not isinstance(cmd, click.Group):
            assert path in covered or path[:1] in covered and len(path) == 1, f"no wrong-input case for {path}"
    before = _snapshot(fed, w)
    failures = []
    for argv, fragment in cases:
        res = CliRunner().invoke(cli, [str(a) for a in argv], input="", catch_exceptions=False)
        shown = f"pocsync {' '.join(map(str, argv))} -> {res.exit_code}\nstdout: {res.stdout}\nstderr: {res.stderr}"
        errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error (")]
        if not (
            res.exit_code not in (0, None)
            and "Traceback" not in res.output
            and len(errors) == 1
            and not errors[0].startswith("error (internal_error)")
            and errors[0] == res.stderr.splitlines()[-1]  # the error is the last word
            and not res.stderr.startswith("\n")  # and nothing blank comes before it (a stopped progress bar)
            and fragment in errors[0]
        ):
            failures.append(f"{shown}\n(wanted one error line holding {fragment!r})")
    assert not failures, "\n\n".join(failures)
    assert _snapshot(fed, w) == before, "a wrong input changed something"


def test_publish_errors_are_one_line_and_success_is_quiet(fed: LocalFederation, broker, tmp_path: Path) -> None:
    """manifest publish through aiomqtt: broker down, TLS against a plain port, unsigned; then a clean success."""
    from tests.support.broker import free_port

    def publish(url: str, manifest: Path = fed.manifest):
        return sh("manifest", "publish", manifest, "--mqtt", url, "--timeout", "5", check=False)

    for url, fragment, reason in [
        (f"mqtt://127.0.0.1:{free_port()}", b"Connection refused", b"broker_unreachable"),
        (f"mqtts://127.0.0.1:{broker.port}", b"TLS", b"broker_tls_error"),
    ]:
        proc = publish(url)
        err = proc.stderr.decode()
        assert proc.returncode == 2 and b"Traceback" not in proc.stderr, err
        assert len(err.strip().splitlines()) == 1 and reason in proc.stderr and fragment in proc.stderr, err
    unsigned = tmp_path / "v2.json"
    run("manifest", "next", fed.manifest, "--out", unsigned)
    proc = publish(broker.url, unsigned)
    assert proc.returncode == 2 and b"threshold_not_met" in proc.stderr
    proc = publish(broker.url)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr  # no "Client is not connected" noise
    import paho.mqtt.subscribe as subscribe

    from pocsync.core import manifest as mf

    msg = subscribe.simple("pocsync/v1/manifest", hostname="127.0.0.1", port=broker.port, retained=True)
    assert msg.retain and mf.parse(msg.payload).id == mf.parse(fed.manifest.read_bytes()).id


def test_init_needs_a_usable_public_url_and_node_info_refuses_an_unusable_one(tmp_path: Path) -> None:
    from tests.integration.test_listener_tls import self_signed

    res = run("init", "--node", "eu", "--data", tmp_path / "eu", "--listen", "0.0.0.0:8443", ok=False)
    assert res.exit_code == 2 and "--public-url" in res.stderr and not (tmp_path / "eu").exists()
    res = run(
        "init",
        "--node",
        "eu",
        "--data",
        tmp_path / "eu",
        "--listen",
        "0.0.0.0:8443",
        "--public-url",
        "https://eu.example.org:8443",
        ok=False,
    )
    assert res.exit_code == 2 and "--tls-cert" in res.stderr  # plain HTTP off loopback would not start
    crt, key = self_signed(tmp_path)
    run(
        "init",
        "--node",
        "eu",
        "--data",
        tmp_path / "eu",
        "--listen",
        "0.0.0.0:8443",
        "--public-url",
        "https://eu.example.org:8443",
        "--tls-cert",
        crt,
        "--tls-key",
        key,
    )
    toml = (tmp_path / "eu" / "sync.toml").read_text()
    assert f'tls_cert = "{crt.resolve()}"' in toml and f'tls_key = "{key.resolve()}"' in toml
    info = json.loads(run("node-info", "--data", tmp_path / "eu").output)
    assert info["endpoints"] == {"http": "https://eu.example.org:8443"}
    # a sync.toml written by an older init (public_url from a wildcard listen) is refused, not sent
    for bad, why in [
        ("http://0.0.0.0:8443", "wildcard"),
        ("", "no public URL"),
        ("http://eu.example.org:8443", "plain HTTP off loopback"),
    ]:
        (tmp_path / "eu" / "sync.toml").write_text(
            toml.replace('public_url = "https://eu.example.org:8443"', f'public_url = "{bad}"')
        )
        res = run("node-info", "--data", tmp_path / "eu", ok=False)
        assert res.exit_code == 2 and why in res.stderr and "unusable_public_url" in res.stderr
        assert res.stdout == ""
    # loopback nodes (tests, a single machine) keep their plain-HTTP default
    run("init", "--node", "osce", "--data", tmp_path / "osce", "--listen", "127.0.0.1:8701")
    assert json.loads(run("node-info", "--data", tmp_path / "osce").output)["endpoints"] == {
        "http": "http://127.0.0.1:8701"
    }


def test_output_to_a_pipe_is_not_wrapped(fed: LocalFederation) -> None:
    """Through a real pipe, with no COLUMNS: keys and messages are never split across lines."""
    import os
    import subprocess

    from tests.support.cli import pocsync_exe

    long_org = "Example National Computer Security Incident Response Team of the Republic of Austria (fictional)"
    fed.put("eu", [{**ENTRIES["eu"][0], "organisation": long_org}, ENTRIES["eu"][1]])
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run(
        [*pocsync_exe(), "entry", "list", "--data", str(fed.data("eu"))],
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    )
    out = proc.stdout.decode()
    assert long_org in out and "AUT/technical" in out and "AUT/diplomatic" in out
    assert max(map(len, out.splitlines())) > 80
    proc = subprocess.run(
        [*pocsync_exe(), "entry", "withdraw", "--data", str(fed.data("eu")), "UKR/diplomatic"],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2 and len(proc.stderr.decode().strip().splitlines()) == 1


def test_every_command_that_prints_a_table_has_json(fed: LocalFederation) -> None:
    import inspect

    live_view = {("demo",)}  # a live view of its own federation, not a table of data
    not_mine = {("log", "import")}  # its summary is rebuilt with the counting fix (issue 9, another part)
    for path, cmd in all_commands(cli):
        if isinstance(cmd, click.Group) or path in live_view | not_mine:
            continue
        src = inspect.getsource(cmd.callback)
        if "table(" in src:
            assert "--json" in run(*path, "--help").output, f"pocsync {' '.join(path)} prints a table without --json"
    fed.put("eu", ENTRIES["eu"])
    for argv in (["entry", "list"], ["quarantine", "list"], ["audit"], ["log", "verify"]):
        json.loads(run(*argv, "--data", fed.data("eu"), "--json").output)
    assert json.loads(run("log", "verify", "--data", fed.data("eu"), "--json").output) == {
        "verified": 1,
        "problems": [],
    }
    json.loads(run("manifest", "show", fed.manifest, "--json").output)


def test_manifest_features_create_set_features_and_install_refusal(fed: LocalFederation, tmp_path: Path) -> None:
    from pocsync.core import manifest as mf
    from pocsync.core import opkinds

    # `manifest create` listed every feature of this software but the opt-in ones; the nodes installed it
    assert json.loads(run("manifest", "show", fed.manifest, "--json").output)["features"] == sorted(
        set(opkinds.FEATURES) - opkinds.OPT_IN_FEATURES
    )
    # enabling held-changes sets its policy: the default hold, and `since` now (earlier edits are never held)
    run("manifest", "set-features", fed.manifest, "--features", "held-changes,toy-note", "--out", tmp_path / "h.json")
    policy = json.loads(run("manifest", "show", tmp_path / "h.json", "--json").output)["policy"]["held-changes"]
    assert policy["hold_seconds"] == 86400 and abs(int(policy["since"][:13]) - time.time() * 1000) < 60_000
    # set-features on a signed version writes the next version, unsigned
    m2 = tmp_path / "m2.json"
    m2.write_bytes(fed.manifest.read_bytes())
    res = run("manifest", "set-features", m2, "--features", "")
    assert "v2" in res.output
    shown = json.loads(run("manifest", "show", m2, "--json").output)
    assert shown["version"] == 2 and "features" not in shown
    res = run("manifest", "set-features", m2, "--features", "toy-note,future-feature", ok=False)
    assert res.exit_code == 2 and "future-feature" in res.output and "Traceback" not in res.output
    assert json.loads(run("manifest", "show", m2, "--json").output)["version"] == 2  # nothing written
    run(
        "manifest", "set-features", fed.manifest, "--features", "toy-note", "--out", tmp_path / "alt.json", ok=False
    )  # v1 already enables exactly these
    res = run("manifest", "set-features", m2, "--features", "toy-note", "--out", m2, ok=False)
    assert res.exit_code == 2 and "exists" in res.output
    run("manifest", "sign", m2, "--key", fed.base / "root" / "root.key")
    run("manifest", "install", "--data", fed.data("eu"), m2)
    run("manifest", "set-features", m2, "--features", "toy-note", "--out", tmp_path / "m2b.json")
    assert json.loads(run("manifest", "show", tmp_path / "m2b.json", "--json").output)["version"] == 3
    assert json.loads(run("manifest", "show", m2, "--json").output)["version"] == 2  # FILE untouched
    # a manifest naming a feature this software lacks (made by a newer tool) is refused at install
    m3 = mf.set_features(mf.next_version(mf.parse(m2.read_bytes()).payload), ["future-feature"])
    (tmp_path / "m3.json").write_text(json.dumps(mf.unsigned(m3).envelope.to_json()))
    run("manifest", "sign", tmp_path / "m3.json", "--key", fed.base / "root" / "root.key")
    res = run("manifest", "install", "--data", fed.data("eu"), tmp_path / "m3.json", ok=False)
    assert res.exit_code != 0 and "unsupported_feature" in res.output and "future-feature" in res.output
    assert "this pocsync lacks: future-feature" in run("manifest", "show", tmp_path / "m3.json").output
