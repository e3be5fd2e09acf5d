"""Child process for the durability test: edits in a loop and acknowledges each committed edit.

Prints ``ok <seq> <change-set id>`` (flushed) only after ``Store.edit`` returned, i.e. after the
transaction committed with synchronous=FULL — exactly when the CLI would report success.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pocsync.nodedir import NodeDir


def main() -> None:
    data, tag = Path(sys.argv[1]), sys.argv[2]
    nd = NodeDir.open(data)
    with nd.store() as store:
        key = nd.key_for_next_edit(store)
        i = 0
        while True:
            i += 1
            entry = {"state": "AUT", "kind": "technical", "organisation": "Example CSIRT (fictional)",
                     "emails": ["duty@csirt-aut.example.org"], "available_24_7": True, "notes": f"{tag}-{i}"}
            out = store.edit([{"op": "put", "key": "AUT/technical", "entry": entry}], key=key, author="loop")
            sys.stdout.write(f"ok {out.seq} {out.cs_id}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
