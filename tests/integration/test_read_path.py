"""The cached read path (issue 13, ADR 21) on a real node: rendered bodies with ETags are served until
anything commits, every commit (the daemon's or a CLI process's) is seen by the very next request —
edits, sign-outs, deletes — and every read's audit row lands within the group-commit window, even when
the node is killed right after it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from pocsync.live.readcache import AUDIT_WINDOW_S
from tests.support.cli import run
from tests.support.nodes import Federation, entry

pytestmark = pytest.mark.slow


def call(
    url: str,
    token: str | None = None,
    *,
    method: str = "GET",
    headers: dict | None = None,
    body: bytes | None = None,
    cookie: str | None = None,
) -> tuple[int, dict, bytes]:
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    if cookie:
        h["Cookie"] = cookie
    req = urllib.request.Request(url, method=method, headers=h, data=body)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_cached_reads_see_every_commit_at_once_and_audit_rows_land(tmp_path) -> None:
    fed = Federation(tmp_path, ("un", "eu"), pull_interval=2)
    eu = fed["eu"]
    eu.put(entry("AUT/technical"), entry("DEU/technical"), entry("FRA/technical"))
    fed.start("eu")
    try:
        tok = run("token", "issue", "--data", eu.data, "--poc", "DEU/technical", "--days", "1").output.strip()
        reads = 0

        def get(path: str, **kw) -> tuple[int, dict, bytes]:
            nonlocal reads
            reads += 1
            return call(eu.url + path, tok if "cookie" not in kw else None, **kw)

        # the list and one entry: 200 with an ETag, then 304 for the same ETag (served from the cache)
        status, h, body = get("/v1/entries")
        assert status == 200 and h["Content-Type"].startswith("application/json")
        first = json.loads(body)
        assert {e["key"] for e in first["entries"]} == {"AUT/technical", "DEU/technical", "FRA/technical"}
        assert get("/v1/entries", headers={"If-None-Match": h["ETag"]})[0] == 304
        assert get("/v1/entries?state=AUT", headers={"If-None-Match": h["ETag"]})[0] == 200  # other query
        status, he, body = get("/v1/entries/AUT/technical")
        assert status == 200 and json.loads(body)["entry"]["organisation"].startswith("Example")
        assert get("/v1/entries/AUT/technical", headers={"If-None-Match": he["ETag"]})[0] == 304
        assert get("/v1/entries/ITA/technical")[0] == 404

        # an edit committed by another process (the CLI) is served by the very next request
        eu.put(entry("AUT/technical", organisation="Renamed technical PoC of AUT (fictional)"))
        status, h2, body = get("/v1/entries", headers={"If-None-Match": h["ETag"]})
        assert status == 200 and h2["ETag"] != h["ETag"]
        aut = next(e for e in json.loads(body)["entries"] if e["key"] == "AUT/technical")
        assert aut["entry"]["organisation"] == "Renamed technical PoC of AUT (fictional)"
        status, _, body = get("/v1/entries/AUT/technical", headers={"If-None-Match": he["ETag"]})
        assert status == 200 and json.loads(body)["entry"]["organisation"].startswith("Renamed")

        # a sign-out (a revocation committed by the daemon) takes effect on the next request
        status, sh, _ = call(eu.url + "/v1/session", method="POST", body=json.dumps({"token": tok}).encode())
        assert status == 200
        cookie = sh["Set-Cookie"].split(";")[0]
        assert get("/v1/entries", cookie=cookie)[0] == 200
        assert call(eu.url + "/v1/session", method="DELETE", cookie=cookie)[0] == 200
        status, _, body = call(eu.url + "/v1/entries", cookie=cookie)
        assert status == 401 and json.loads(body)["reason"] == "revoked"

        # the subject deleted by the CLI (another process): its token dies on the next request
        assert get("/v1/entries")[0] == 200
        run("entry", "delete", "--data", eu.data, "DEU/technical", "--no-peer-check", "--author", "staff@eu")
        status, _, body = call(eu.url + "/v1/entries", tok)
        assert status == 401 and json.loads(body)["reason"] in ("subject_not_listed", "holder_changed")

        # every answered read is audited; the rows are committed within the window: a node killed
        # (SIGKILL, no shutdown flush) one window and a margin after the last read has them all
        time.sleep(2 * AUDIT_WINDOW_S + 0.5)
        eu.kill()
        with eu.store() as s:
            rows = [
                r
                for r in s.audit_log(10_000)
                if r["actor"].startswith("DEU/technical") and r["action"].startswith("entries.")
            ]
        assert len(rows) == reads, (len(rows), reads)
        assert {r["result"] for r in rows} == {"ok", "not_modified", "not_found"}
    finally:
        fed.stop()


def test_a_clean_stop_commits_the_audit_rows_still_waiting(tmp_path) -> None:
    fed = Federation(tmp_path, ("un", "eu"), pull_interval=2)
    eu = fed["eu"]
    eu.put(entry("DEU/technical"))
    fed.start("eu")
    try:
        tok = run("token", "issue", "--data", eu.data, "--poc", "DEU/technical", "--days", "1").output.strip()
        probe = f"stop{time.time_ns()}"
        n = 12
        for _ in range(n):
            assert call(eu.url + f"/v1/entries?q={probe}", tok)[0] == 200
        eu.stop()  # SIGTERM at once, well inside the window: the shutdown flush commits the rows
        with eu.store() as s:
            rows = [r for r in s.audit_log(10_000) if r["action"] == "entries.list" and probe in r["target"]]
        assert len(rows) == n
    finally:
        fed.stop()
