"""Writes tests/vectors/poke.json: a poke carrying a head vector (PROTOCOL.md §13.3, ADR 11).

Deterministic like make_vectors.py (same seeds, fixed times, Ed25519): node eu pokes node un with
the head vector of heads.json as the body of a signed ``POST /v1/peer/poke``; the request signature
covers the body's SHA-256.  Usage: PYTHONPATH=. .venv/bin/python tests/vectors/make_poke_vector.py
"""

from __future__ import annotations

import base64
import json

from pocsync.core import envelope as dsse
from pocsync.core.peerauth import body_hash, sign_request
from tests.vectors.make_vectors import HERE, ed, write

TS = 1763800000400


def main() -> None:
    eu = ed("eu:k1")
    body = json.loads((HERE / "heads.json").read_text())["envelope"].encode()
    auth = sign_request(
        node="eu", keyid="eu:k1", key=eu, target="un", method="POST", path="/v1/peer/poke", body=body, now_ms=TS
    )
    env = dsse.parse(base64.b64decode(auth.split(" ", 1)[1]), max_bytes=1 << 16)
    write(
        "poke.json",
        {
            "description": "POST /v1/peer/poke from eu to un; the body is eu's signed head vector (heads.json)",
            "manifest_vector": "manifest.json",
            "method": "POST",
            "path": "/v1/peer/poke",
            "node": "eu",
            "target": "un",
            "ts": TS,
            "body": body.decode(),
            "body_sha256": body_hash(body),
            "request_payload": env.payload.decode(),
            "authorization": auth,
        },
    )


if __name__ == "__main__":
    main()
