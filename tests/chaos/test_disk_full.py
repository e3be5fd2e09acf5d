"""A full disk refuses new edits with a clear error, loses nothing, and edits work again once space returns."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pocsync.errors import StoreError
from pocsync.folder.nodedir import NodeDir
from tests.chaos.harness import fill_disk
from tests.support.cli import ENTRIES, LocalFederation, run, sh


def _entry(i: int) -> dict:
    return {**ENTRIES["eu"][0], "notes": f"edit {i}"}


def _logged(data: Path) -> list[tuple[int, str]]:
    with NodeDir.open(data).store() as store:
        return [
            (r["seq"], r["id"]) for r in store.conn.execute("SELECT seq, id FROM log WHERE origin='eu' ORDER BY seq")
        ]


def test_store_at_its_size_limit_refuses_an_edit_with_disk_full_and_keeps_every_committed_one(tmp_path: Path) -> None:
    """SQLite's max_page_count stands in for a full disk (SQLITE_FULL), no root needed."""
    fed = LocalFederation(tmp_path, nodes=("eu",))
    fed.put("eu", [_entry(0)])
    before = _logged(fed.data("eu"))
    nd = NodeDir.open(fed.data("eu"))
    with nd.store() as store:
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages}")
        key = nd.key_for_next_edit(store)
        big = {**_entry(1), "notes": "x" * 1500}
        with pytest.raises(StoreError) as err:
            for i in range(50):  # fill the last free pages, then the next edit cannot be written
                store.edit(
                    [
                        {
                            "op": "put",
                            "key": f"{['AUT', 'DEU', 'FRA', 'ITA'][i % 4]}/technical",
                            "entry": {**big, "state": ["AUT", "DEU", "FRA", "ITA"][i % 4]},
                        }
                    ],
                    key=key,
                    author="t",
                )
        assert err.value.reason == "disk_full" and "full" in err.value.message
        store.conn.execute("PRAGMA max_page_count = 1073741823")
        store.edit(
            [{"op": "put", "key": "AUT/technical", "entry": _entry(2)}], key=nd.key_for_next_edit(store), author="t"
        )
    after = _logged(fed.data("eu"))
    assert after[: len(before)] == before and len(after) > len(before)
    assert [s for s, _ in after] == list(range(1, len(after) + 1))
    assert run("log", "verify", "--data", fed.data("eu")).output.startswith(f"ok: {len(after)} change-sets verified")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root; the max_page_count test covers the store")
def test_cli_edit_on_a_full_tmpfs_fails_with_one_clear_line_and_works_after_space_returns(tmp_path: Path) -> None:
    mnt = tmp_path / "eu"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        fed = LocalFederation(tmp_path, nodes=("eu",))
        fed.put("eu", [_entry(0)])
        before = _logged(fed.data("eu"))
        fill_disk(mnt / "filler")
        refused = sh(
            "entry",
            "put",
            "--data",
            fed.data("eu"),
            "-",
            "--author",
            "staff@eu",
            input=json.dumps([_entry(1)]).encode(),
            check=False,
        )
        err = refused.stderr.decode()
        assert refused.returncode != 0
        assert "disk_full" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2, err
        (mnt / "filler").unlink()
        assert _logged(fed.data("eu")) == before  # (read after: with no space even opening the WAL can fail)
        fed.put("eu", [_entry(2)])
        after = _logged(fed.data("eu"))
        assert after[:1] == before and len(after) == 2
        assert run("log", "verify", "--data", fed.data("eu")).output.startswith("ok: 2 change-sets verified")
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
