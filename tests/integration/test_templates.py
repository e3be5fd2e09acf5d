"""Templates in a running federation (issue 17, PROTOCOL.md §18): real nodes, real HTTP, the real CLI.

A template published at the UN node reaches every node (same digest, same templates); a regional node's
template op is refused before signing at its origin, and — signed anyway by a hostile regional node — by
every peer; a malformed template is refused with a clear message; PoCs read templates over the API.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pocsync.core import envelope as dsse
from pocsync.directory.shipped_templates import paths as template_paths
from pocsync.directory.shipped_templates import shipped
from pocsync.folder.nodedir import NodeDir
from tests.support.cli import run
from tests.support.nodes import Federation, entry, wait_for

pytestmark = pytest.mark.slow


def call(url: str, token: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def templates_at(fed: Federation, n: str) -> list[tuple[str, int, str]]:
    with fed[n].store() as s:
        return [(t["id"], t["version"], t["origin"]) for t in s.templates()]


def refused_at(fed: Federation, n: str) -> list[tuple[str, str, str]]:
    with fed[n].store() as s:
        return [(r["origin"], r["op"], r["reason"]) for r in s.refused()]


def test_templates_flow_from_the_un_node_and_a_regional_one_is_refused_everywhere(tmp_path: Path) -> None:
    fed = Federation(tmp_path, names=("un", "eu", "osce"))
    try:
        fed.start()
        fed["eu"].put(entry("AUT/technical"))
        fed.wait_converged()
        # the UN node publishes the shipped templates with the CLI
        res = run("template", "publish", "--data", fed["un"].data, "--shipped")
        assert "committed change-set un seq" in res.output and "with 4 op(s)" in res.output
        want = sorted((tid, 1, "un") for tid in shipped())
        for n in fed.nodes:
            wait_for(lambda n=n: templates_at(fed, n) == want, 60, f"{n} to hold the 4 templates")
        digest = fed.wait_converged()
        assert len(set(fed.digests().values())) == 1
        # a newer version supersedes the older one everywhere
        newer = json.loads(template_paths()[0].read_text())
        newer["version"] = 2
        newer["languages"]["en"]["text"] += " (Revised, fictional.)"
        (tmp_path / "newer.json").write_text(json.dumps(newer))
        run("template", "publish", "--data", fed["un"].data, tmp_path / "newer.json")
        for n in fed.nodes:
            wait_for(lambda n=n: (newer["id"], 2, "un") in templates_at(fed, n), 60, f"{n} to hold version 2")
        digest = fed.wait_converged()
        assert digest == fed["un"].digest()

        # a regional node refuses before signing: one line, nothing committed
        with fed["eu"].store() as s:
            eu_head = s.heads()["eu"]
        res = run("template", "publish", "--data", fed["eu"].data, template_paths()[1], ok=False)
        assert res.exit_code != 0 and "eu may not publish templates" in res.output and "Traceback" not in res.output
        with fed["eu"].store() as s:
            assert s.heads()["eu"] == eu_head
        # a malformed template is refused with a clear message at the UN node, nothing committed
        bad = json.loads(template_paths()[1].read_text())
        bad["version"] = 5
        bad["schema"]["properties"]["tlp"]["pattern"] = "^(a+)+$"
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        res = run("template", "publish", "--data", fed["un"].data, tmp_path / "bad.json", ok=False)
        assert res.exit_code != 0 and "nested quantifiers" in res.output and "nothing was committed" in res.output
        del bad["languages"]["fr"]
        bad["schema"]["properties"]["tlp"].pop("pattern")
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        res = run("template", "publish", "--data", fed["un"].data, tmp_path / "bad.json", ok=False)
        assert res.exit_code != 0 and "missing: ['fr']" in res.output

        # a hostile regional node signs a template op anyway (as another implementation could): every
        # node, eu included, refuses it out_of_scope and nothing changes in anyone's templates
        hostile = json.loads(template_paths()[1].read_text())
        hostile["version"] = 99
        with fed["eu"].store() as s:
            head = s.heads()["eu"]
            payload = json.dumps(
                {
                    "type": "pocsync.changeset/v1",
                    "origin": "eu",
                    "seq": head.seq + 1,
                    "prev": head.id,
                    "hlc": max(head.hlc, f"{time.time_ns() // 10**6}-0000"),
                    "manifest": 1,
                    "author": "staff@eu",
                    "ops": [{"op": "template", "key": hostile["id"], "template": hostile}],
                },
                sort_keys=True,
                separators=(",", ":"),
            ).encode()
            env = dsse.sign(dsse.CHANGESET_TYPE, payload, "eu:k1", NodeDir.open(fed["eu"].data).signing_key("k1"))
            out = s.receive(env.to_bytes(), source="import")
            assert out.status == "accepted" and [r.reason for r in out.refused] == ["out_of_scope"]
        fed["eu"].put(entry("DEU/technical"))  # announces the new head
        for n in fed.nodes:
            wait_for(
                lambda n=n: ("eu", "template", "out_of_scope") in refused_at(fed, n),
                60,
                f"{n} to refuse eu's template op",
            )
        digest = fed.wait_converged()
        for n in fed.nodes:
            held = templates_at(fed, n)
            assert all(origin == "un" for _, _, origin in held) and (hostile["id"], 99, "eu") not in held
            assert len(held) == 4

        # PoCs read them over the API at any node; operators are refused; unknown ids are 404
        tok = run("token", "issue", "--data", fed["eu"].data, "--poc", "AUT/technical").output.strip()
        status, body = call(fed["osce"].url + "/v1/templates", tok)
        assert status == 200
        listed = json.loads(body)["templates"]
        assert [t["id"] for t in listed] == sorted(shipped()) and all(t["origin"] == "un" for t in listed)
        assert next(t for t in listed if t["id"] == newer["id"])["version"] == 2
        status, body = call(fed["eu"].url + "/v1/templates/reply", tok)
        assert (
            status == 200
            and json.loads(body)["languages"]["es"]["title"] == shipped()["reply"]["languages"]["es"]["title"]
        )
        assert call(fed["eu"].url + "/v1/templates/no-such-template", tok)[0] == 404
        assert call(fed["eu"].url + "/v1/templates/Bad%20Id", tok)[0] == 400
        op = run("token", "issue", "--data", fed["un"].data, "--operator", "duty").output.strip()
        assert call(fed["eu"].url + "/v1/templates", op)[0] == 403
        deadline = time.monotonic() + 30  # audit rows are group-committed within 1 s (ADR 21)
        while True:
            rows = json.loads(run("audit", "--data", fed["osce"].data, "--json").output)
            if any(r["action"] == "templates.list" and r["actor"].startswith("AUT/technical") for r in rows):
                break
            assert time.monotonic() < deadline, "the template read was never audited"
            time.sleep(0.2)
        # the CLI shows the same at every node
        for n in fed.nodes:
            assert json.loads(run("template", "list", "--data", fed[n].data, "--json").output) == json.loads(
                run("template", "list", "--data", fed["un"].data, "--json").output
            )
        shown = json.loads(run("template", "show", "--data", fed["osce"].data, "reply").output)
        assert shown["id"] == "reply" and shown["origin"] == "un"
        assert digest == fed.wait_converged()
    finally:
        fed.stop()


def test_policy_publishers_set_with_the_cli_moves_who_may_publish(tmp_path: Path) -> None:
    """`template publishers` writes policy.templates.publishers; once signed and installed, the named node
    publishes, the un node is refused before signing, and every node applies the named node's templates."""
    from tests.support.cli import LocalFederation

    fed = LocalFederation(tmp_path)
    m2 = tmp_path / "m2.json"
    m2.write_bytes(fed.manifest.read_bytes())
    res = run("template", "publishers", m2, "--nodes", "eu")
    assert "templates are published by eu" in res.output
    run("manifest", "sign", m2, "--key", tmp_path / "root" / "root.key")
    for n in fed.nodes:
        run("manifest", "install", "--data", fed.data(n), m2)
    res = run("template", "publish", "--data", fed.data("un"), "--shipped", "--no-peer-check", ok=False)
    assert (
        res.exit_code != 0 and "un may not publish templates (policy.templates.publishers lists ['eu'])" in res.output
    )
    run("template", "publish", "--data", fed.data("eu"), template_paths()[0], "--no-peer-check")
    fed.sync_all()
    for n in fed.nodes:
        listed = json.loads(run("template", "list", "--data", fed.data(n), "--json").output)
        assert [(t["id"], t["origin"]) for t in listed] == [(json.loads(template_paths()[0].read_text())["id"], "eu")]
    assert len({fed.digest(n) for n in fed.nodes}) == 1
