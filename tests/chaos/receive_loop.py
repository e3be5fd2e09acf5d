"""Child process for the receipt durability test: receives change-sets in a loop, as the daemon does.

Each envelope (one JSON line of the file) goes through ``Store.receive`` in its own transaction, the
non-durable one of ADR 42 (synchronous=NORMAL); ``ok <seq> <change-set id>`` is printed (flushed) only
after ``receive`` returned it accepted, i.e. after its COMMIT.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pocsync.store import Store


def main() -> None:
    store_path, envelopes, now_ms = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    with Store.open(store_path) as store:
        for line in envelopes.read_bytes().splitlines():
            out = store.receive(line, source="mqtt", now_ms_=now_ms)
            if out.status == "accepted":
                sys.stdout.write(f"ok {out.seq} {out.cs_id}\n")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
