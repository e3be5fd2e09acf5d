"""Issue 11 end to end: the attacks that got through, against real `pocsync run` processes, a real
Mosquitto started by the test and real HTTP on loopback."""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.publish as mqtt_publish
import pytest
from paho.mqtt.client import MQTTv5

from pocsync.core import envelope as dsse
from pocsync.core import jsonc
from pocsync.core import manifest as mf
from pocsync.core.seal import seal
from tests.support.broker import Mosquitto
from tests.support.cli import run
from tests.support.nodes import Federation, entry, wait_for

pytestmark = pytest.mark.slow


def unsigned_claim(origin: str, seq: int = 999_999, manifest: int = 999, pad: int = 0) -> bytes:
    payload = jsonc.dumps(
        {
            "type": "pocsync.changeset/v1",
            "origin": origin,
            "seq": seq,
            "prev": None,
            "hlc": "1763800000000-0000",
            "manifest": manifest,
            "author": "m" + "x" * pad,
            "ops": [{"op": "delete", "key": "DEU/technical"}],
        }
    )
    return jsonc.dumps(
        {
            "payloadType": dsse.CHANGESET_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": f"{origin}:k1", "sig": base64.b64encode(bytes(64)).decode()}],
        }
    )


def test_broker_attacks_neither_freeze_signing_nor_restart_the_mqtt_task(tmp_path: Path, broker: Mosquitto) -> None:
    fed = Federation(tmp_path, ("un", "eu", "osce"), mqtt=broker.url, pull_interval=5)
    try:
        fed.start()
        wait_for(
            lambda: all(fed[n].stats(as_node=fed["un"])["mqtt_connected"] for n in fed.nodes),
            60,
            "every node connected to the broker",
        )
        m = mf.parse(fed.manifest.read_bytes())
        members = {n: info.sealing_key for n, info in m.members().items()}

        def pub(topic: str, payload: bytes, retain: bool = False) -> None:
            mqtt_publish.single(
                topic, payload, qos=1, retain=retain, hostname="127.0.0.1", port=broker.port, protocol=MQTTv5
            )

        def sealed(inner: bytes, sender: str) -> bytes:
            return seal(
                inner, sender=sender, manifest=m.version, context=f"mqtt:pocsync/v1/cs/{sender}", recipients=members
            )

        # case 2: a malformed retained manifest (every node reads it on every (re)connect)
        bad = dict(m.payload, roots=5, version=m.version + 1)
        pub(
            "pocsync/v1/manifest",
            dsse.sign(dsse.MANIFEST_TYPE, jsonc.dumps(bad), "x", _junk_key()).to_bytes(),
            retain=True,
        )
        # case 1: osce's broker account speaks for eu; and a claim about osce itself
        pub("pocsync/v1/cs/osce", sealed(unsigned_claim("eu"), "osce"))
        pub("pocsync/v1/cs/osce", sealed(unsigned_claim("osce"), "osce"))
        # case 3: oversize sealed blobs
        for i in range(20):
            pub("pocsync/v1/cs/osce", sealed(unsigned_claim("osce", seq=i + 1, pad=300_000), "osce"))
        pub("pocsync/v1/head/zz", b"\xff" * 10)
        pub("pocsync/v1/status/" + "z" * 50, b"online")

        c: dict = {}
        wait_for(
            lambda: (
                c.update(fed["eu"].stats(as_node=fed["un"])["counters"])
                or (
                    c.get("mqtt_rejected:wrong_origin_topic", 0) >= 1
                    and c.get("mqtt_rejected:bad_manifest", 0) >= 1
                    and c.get("changesets_quarantined:oversize", 0) >= 20
                )
            ),
            60,
            f"eu to refuse the attacks: {c}",
        )
        assert not any(k.startswith("task_restarts") for k in c), c
        assert fed["eu"].stats(as_node=fed["un"])["mqtt_connected"]
        # signing still works at eu, and its edit still reaches the others over the same broker
        fed["eu"].put(entry("DEU/technical", notes="after the attack"))
        fed.wait_converged()
        with fed["eu"].store() as s:
            assert s.signing_blocked() is None
            q = s.conn.execute("SELECT count(*), coalesce(sum(length(envelope)), 0) FROM quarantine").fetchone()
            assert q[0] >= 20 and q[1] <= 20 * 512 + 64 * 1024, q  # a record, not the bodies
        # the retained manifest is read again on reconnect: still no restart
        fed["eu"].stop()
        fed["eu"].start()
        wait_for(lambda: fed["eu"].stats(as_node=fed["un"])["mqtt_connected"], 60, "eu back on the broker")
        wait_for(
            lambda: (
                c.update(fed["eu"].stats(as_node=fed["un"])["counters"]) or c.get("mqtt_rejected:bad_manifest", 0) >= 1
            ),
            30,
            "eu to refuse the retained manifest again",
        )
        assert not any(k.startswith("task_restarts") for k in c), c
    finally:
        fed.stop()


def _junk_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


# --- HTTP ----------------------------------------------------------------------------------------
def call(url: str, *, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    req = urllib.request.Request(url, method=method, headers=dict(headers or {}), data=body)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def raw_request(port: int, head: bytes) -> int:
    """Send bytes no HTTP library would: the status code of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory):
    f = Federation(tmp_path_factory.mktemp("attacks"), ("un", "eu"), pull_interval=2)
    f.start()
    f["eu"].put(entry("DEU/technical"))
    f.wait_converged()
    yield f
    f.stop()


def poc(fed: Federation, key: str = "DEU/technical") -> str:
    return run("token", "issue", "--data", fed["eu"].data, "--poc", key, "--days", "1").output.strip()


def test_case10_bad_input_gets_4xx_with_a_reason(fed: Federation) -> None:
    eu = fed["eu"]
    deep = b'{"token":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, _, body = call(
        eu.url + "/v1/session", method="POST", body=deep, headers={"Content-Type": "application/json"}
    )
    assert status == 400 and json.loads(body)["reason"] == "bad_request"
    head = b"GET /v1/entries HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xfd\r\nConnection: close\r\n\r\n"
    assert raw_request(eu.port, head) == 401
    head = b"GET /v1/peer/heads HTTP/1.1\r\nHost: x\r\nAuthorization: Pocsync \xff\xfe\r\nConnection: close\r\n\r\n"
    assert raw_request(eu.port, head) == 401
    for after in ("9007199254740993", "9223372036854775808", "-1", "1e3"):
        status, body = eu.signed_get(f"/v1/peer/changesets?origin=eu&after={after}", as_node=fed["un"])
        assert status == 400 and json.loads(body)["reason"] == "bad_request", (after, body)
    status, body = eu.signed_get("/v1/peer/changesets?origin=eu&after=0&limit=99999999999999999999", as_node=fed["un"])
    assert status == 400


def test_case9_credentials_never_reach_the_node_log(fed: Federation) -> None:
    eu = fed["eu"]
    tok = poc(fed)
    status, _, _ = call(eu.url + "/v1/entries?access_token=" + tok)
    assert status == 401
    head = (
        b"GET /v1/entries HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok.encode() + b"\x01\r\n"
        b"Connection: close\r\n\r\n"
    )
    assert raw_request(eu.port, head) in (400, 401)
    status, _, _ = call(eu.url + "/v1/entries", headers={"Authorization": "Bearer " + tok + "x"})
    assert status == 401
    wait_for(lambda: "access_token=[redacted]" in eu.log.read_text(errors="replace"), 10, "the access log line")
    text = eu.log.read_text(errors="replace")
    for part in tok.split("."):
        assert part not in text


def test_case7_renewal_and_sign_out_revoke_the_old_credential(fed: Federation) -> None:
    eu = fed["eu"]
    tok = poc(fed)
    auth = {"Authorization": "Bearer " + tok}
    assert call(eu.url + "/v1/whoami", headers=auth)[0] == 200
    status, _, body = call(eu.url + "/v1/token/renew", method="POST", headers=auth)
    assert status == 200
    new = json.loads(body)
    assert new["expires_in"] <= 86_400
    status, _, body = call(eu.url + "/v1/whoami", headers=auth)
    assert status == 401 and json.loads(body)["reason"] == "revoked"
    assert call(eu.url + "/v1/whoami", headers={"Authorization": "Bearer " + new["token"]})[0] == 200
    # a session: the cookie is a token of its own, valid at this node only, dead after sign-out
    status, headers, _ = call(
        eu.url + "/v1/session",
        method="POST",
        body=json.dumps({"token": new["token"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    session = cookie.split("=", 1)[1]
    assert session != new["token"]
    assert call(eu.url + "/v1/whoami", headers={"Cookie": cookie})[0] == 200
    assert call(fed["un"].url + "/v1/whoami", headers={"Cookie": cookie})[0] == 401  # another node
    assert call(eu.url + "/v1/whoami", headers={"Authorization": "Bearer " + session})[0] == 401  # not a bearer
    assert call(eu.url + "/v1/session", method="DELETE", headers={"Cookie": cookie})[0] == 200
    status, _, body = call(eu.url + "/v1/whoami", headers={"Cookie": cookie})
    assert status == 401 and json.loads(body)["reason"] == "revoked"


def test_a_session_dies_when_the_token_it_was_opened_with_is_renewed(fed: Federation) -> None:
    """A stolen token used to sign in: the holder's renewal revokes the token at this node, and the session
    cookie opened with it must die too (it was a token of its own with its own jti, alive for 8 h)."""
    eu = fed["eu"]
    tok = poc(fed)
    status, headers, _ = call(
        eu.url + "/v1/session",
        method="POST",
        body=json.dumps({"token": tok}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    assert call(eu.url + "/v1/whoami", headers={"Cookie": cookie})[0] == 200
    assert call(eu.url + "/v1/token/renew", method="POST", headers={"Authorization": "Bearer " + tok})[0] == 200
    status, _, body = call(eu.url + "/v1/whoami", headers={"Cookie": cookie})
    assert status == 401 and json.loads(body)["reason"] == "revoked"


def test_renewals_and_sign_ins_are_rate_limited_per_subject(fed: Federation) -> None:
    """Each renewal or sign-in mints a token with a fresh jti (a fresh read allowance) and each renewal adds a
    deny-list row: one token could mint them at any rate.  They are limited per subject."""
    eu = fed["eu"]
    tok = poc(fed)
    body = json.dumps({"token": tok}).encode()
    codes = [
        call(eu.url + "/v1/session", method="POST", body=body, headers={"Content-Type": "application/json"})[0]
        for _ in range(12)
    ]
    assert codes.count(200) <= 6 and 429 in codes, codes
    with eu.store() as s:
        rows = s.conn.execute("SELECT count(*) FROM revoked_tokens").fetchone()[0]
    chain, statuses = tok, []
    for _ in range(12):
        status, _, b = call(eu.url + "/v1/token/renew", method="POST", headers={"Authorization": "Bearer " + chain})
        statuses.append(status)
        if status == 200:
            chain = json.loads(b)["token"]
    assert statuses.count(200) <= 6 and 429 in statuses, statuses
    with eu.store() as s:
        assert s.conn.execute("SELECT count(*) FROM revoked_tokens").fetchone()[0] - rows <= 6


def test_case13_the_web_page_shows_forbidden_code_points_as_replacement(fed: Federation) -> None:
    """The PoC page is a renderer too: its text helper neutralises what a member node may have signed."""
    from tests.support.browser import browser

    with browser() as b:
        page = b.new_context().new_page()
        page.goto(fed["eu"].url + "/")
        page.fill("#token", poc(fed))
        page.click("#signin-btn")
        page.wait_for_selector("#results tbody tr")
        shown = page.evaluate("safe('a\\u202eb\\u2028c\\u0085d\\u2066e\\u0000f\\ud800g\\nh \\u200f\\ud83d\\ude00')")
        assert shown == "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg\nh \u200f\U0001f600"  # LF stays (notes)
        td = page.evaluate("el('td', 'x\\u202ey').textContent")
        assert td == "x\ufffdy"


def test_the_web_page_shows_an_error_detail_by_the_free_text_rule(fed: Federation) -> None:
    """A crafted link (#/entry/<key with a bidi override>) made the page show the node's 404 detail, which
    quotes the key, with the override working."""
    from tests.support.browser import browser

    with browser() as b:
        page = b.new_context().new_page()
        page.goto(fed["eu"].url + "/")
        page.fill("#token", poc(fed))
        page.click("#signin-btn")
        page.wait_for_selector("#results tbody tr")
        page.evaluate("location.hash = '#/entry/DEU/tech%E2%80%AEnical'")
        count = "document.getElementById('count').textContent"
        wait_for(lambda: "not in the directory" in page.evaluate(count), 20, "the page to show the 404 detail")
        shown = page.evaluate(count)
        assert "\u202e" not in shown and "\ufffd" in shown, shown


def test_the_dashboard_shows_forbidden_code_points_as_replacement(fed: Federation) -> None:
    """The operators' dashboard shows a member's signed words too (a refused op's key in the feed): same rule."""
    from tests.support.browser import browser

    with browser() as b:
        page = b.new_context().new_page()
        page.goto(fed["eu"].url + "/dashboard")
        page.wait_for_function("typeof el === 'function'")
        assert (
            page.evaluate("el('td', 'refused put DEU/\\u202elacinhcet\\u2066\\u0000').textContent")
            == "refused put DEU/\ufffdlacinhcet\ufffd\ufffd"
        )
        assert page.evaluate("svgEl('text', {}, 'eu\\u2028x').textContent") == "eu\ufffdx"
