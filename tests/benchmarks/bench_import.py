"""Import speed of large sources (figures, not pass/fail): `python -m tests.benchmarks.bench_import --rows 2000`.

Builds an invented CSV of ROWS records (ISO States × both kinds), imports it into a fresh node with the
real CLI, re-imports it unchanged, then changes one record; prints JSON with seconds and records/s.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import pycountry

from tests.support.cli import LocalFederation, run


def build(path: Path, rows: int) -> None:
    states = [c.alpha_3 for c in pycountry.countries]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["state", "kind", "organisation", "emails", "phones", "available_24_7", "languages"])
        n = 0
        for state in states:
            for kind in ("technical", "diplomatic"):
                if n == rows:
                    return
                w.writerow(
                    [
                        state,
                        kind,
                        f"Example {kind} PoC of {state} (fictional)",
                        f"{kind[:4]}-{state.lower()}@example.org",
                        "",
                        "yes" if kind == "technical" else "",
                        "en;fr",
                    ]
                )
                n += 1


def timed(*args: object) -> tuple[float, dict]:
    t = time.perf_counter()
    res = run(*args, ok=False)
    return time.perf_counter() - t, json.loads(res.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=498, help="records (at most 2 × the ISO States)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        fed = LocalFederation(base, nodes=("un",))
        src = base / "big.csv"
        build(src, a.rows)
        imp = ["entry", "import", "--data", fed.data("un"), src, "--adapter", "csv", "--json"]
        first, rep = timed(*imp)
        again, rep2 = timed(*imp)
        text = src.read_text().replace("Example technical PoC of AUT", "Example technical PoC of AUT (renamed)")
        src.write_text(text)
        one, rep3 = timed(*imp)
    result = {
        "rows": rep["records"],
        "valid": rep["valid"],
        "first_import_s": round(first, 3),
        "first_import_records_per_s": round(rep["records"] / first, 1),
        "unchanged_reimport_s": round(again, 3),
        "unchanged_ops": len(rep2["puts"]) + len(rep2["deletes"]),
        "one_change_s": round(one, 3),
        "one_change_ops": len(rep3["puts"]),
    }
    out = json.dumps(result, indent=2)
    if a.out:
        a.out.write_text(out)
    print(out)


if __name__ == "__main__":
    main()
