"""`pocsync status` against a node answering odd (but JSON) health documents: one line, exit 2 (second attack)."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

BASE = {
    "node": "un",
    "converged": True,
    "equivocations": [],
    "origins": {},
    "announcements": {},
    "signing_blocked": "",
    "manifest": {"version": 1, "expires_in_s": 86400, "warning": None},
    "clock_warnings": [],
    "sources": {},
    "mqtt": None,
    "digest": "d",
    "entries": 0,
    "peers": {},
    "quarantined": {},
    "refused": {},
    "parked": {},
}

CASES = {
    "markup in node name": {**BASE, "node": "[/]"},
    "offline_since huge": {
        **BASE,
        "announcements": {"x": {"state": "behind", "behind": 1, "age_s": 1, "forks": []}},
        "origins": {"x": {"status": "down", "offline_since": 1e300, "lag": False}},
    },
    "deep nesting": None,  # body is 100000 '[' (RecursionError in json.loads)
}


def serve(body: bytes) -> tuple[http.server.HTTPServer, str]:
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


@pytest.mark.parametrize("name", list(CASES))
def test_status_reads_a_malformed_answer_as_one_line(tmp_path: Path, name: str) -> None:
    doc = CASES[name]
    body = b"[" * 100_000 if doc is None else json.dumps(doc).encode()
    srv, url = serve(body)
    tok = tmp_path / "tok"
    tok.write_text("abc\n")
    try:
        p = subprocess.run(
            [str(Path(sys.executable).parent / "pocsync"), "status", "--url", url, "--token", str(tok)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        srv.shutdown()
    out = p.stdout + p.stderr
    assert "Traceback" not in out, out[-2500:]
    assert p.returncode == 2 and "bad_health_answer" in out, out[-2500:]
