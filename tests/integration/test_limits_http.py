"""HTTP limits named in sync.toml (issue 18), crossed on a real node process: per-token and per-peer
rate limits answer 429 and then serve again; the pending-request bound answers 503 while GET /v1/node
still answers, and the node serves again once the held requests go."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.nodes import Federation, entry, wait_for

pytestmark = pytest.mark.slow


def call(url: str, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory):
    f = Federation(tmp_path_factory.mktemp("limits"), ("eu", "osce"))
    toml = f["eu"].data / "sync.toml"
    text = toml.read_text().replace("[api]\n", "[api]\ntoken_requests_per_second = 2\nmax_pending_requests = 3\n")
    toml.write_text(text.replace("[sync]\n", "[sync]\npeer_requests_per_second = 2\n"))
    f.start("eu")
    f["eu"].put(entry("DEU/technical"))
    yield f
    f.stop()


def test_token_rate_limit_answers_429_then_serves_again(fed: Federation) -> None:
    tok = run("token", "issue", "--data", fed["eu"].data, "--poc", "DEU/technical", "--days", "1").output.strip()
    url = fed["eu"].url + "/v1/entries"
    results = [call(url, tok) for _ in range(12)]  # burst 4 at 2/s: crossed well within 12 quick calls
    assert results[0][0] == 200
    limited = [b for s, b in results if s == 429]
    assert limited and limited[0]["reason"] == "rate_limited"
    time.sleep(1.5)
    assert call(url, tok)[0] == 200


def test_peer_rate_limit_answers_429_then_serves_again(fed: Federation) -> None:
    codes = [fed["eu"].signed_get("/v1/peer/heads", as_node=fed["osce"])[0] for _ in range(12)]
    assert codes[0] == 200 and 429 in codes
    time.sleep(1.5)
    assert fed["eu"].signed_get("/v1/peer/heads", as_node=fed["osce"])[0] == 200


def test_pending_request_bound_answers_503_and_node_info_still_answers(fed: Federation) -> None:
    held = []
    for _ in range(3):  # three requests whose body never finishes: each stays pending in its handler
        s = socket.create_connection(("127.0.0.1", fed["eu"].port), timeout=10)
        s.sendall(b"POST /v1/peer/poke HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        held.append(s)
    try:
        wait_for(lambda: call(fed["eu"].url + "/v1/manifest")[0] == 503, 30, "the pending bound to refuse")
        status, body = call(fed["eu"].url + "/v1/manifest")
        assert (status, body["reason"]) == (503, "too_many_pending")
        assert call(fed["eu"].url + "/v1/node")[0] == 200  # the operator still sees the node
    finally:
        for s in held:
            s.close()
    wait_for(lambda: call(fed["eu"].url + "/v1/manifest")[0] == 200, 30, "the node to serve again")


def test_the_node_log_shows_no_crash(fed: Federation) -> None:
    log = Path(fed["eu"].log).read_text()
    assert "Traceback" not in log, log[-3000:]
