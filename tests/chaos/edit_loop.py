"""Child process for the durability test: edits in a loop and acknowledges each committed edit.

Prints ``ok <seq> <change-set id>`` (flushed) only after ``Store.edit`` returned, i.e. after the
transaction committed with synchronous=FULL — exactly when the CLI would report success.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pocsync.folder.nodedir import NodeDir


def main() -> None:
    data, tag = Path(sys.argv[1]), sys.argv[2]
    state = sys.argv[3] if len(sys.argv) > 3 else "AUT"  # a State in the node's scope
    pause = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0  # seconds between edits
    nd = NodeDir.open(data)
    with nd.store() as store:
        key = nd.key_for_next_edit(store)
        i = 0
        while True:
            i += 1
            entry = {
                "state": state,
                "kind": "technical",
                "organisation": "Example CSIRT (fictional)",
                "emails": [f"duty@csirt-{state.lower()}.example.org"],
                "available_24_7": True,
                "notes": f"{tag}-{i}",
            }
            out = store.edit([{"op": "put", "key": f"{state}/technical", "entry": entry}], key=key, author="loop")
            sys.stdout.write(f"ok {out.seq} {out.cs_id}\n")
            sys.stdout.flush()
            if pause:
                time.sleep(pause)


if __name__ == "__main__":
    main()
