"""`pocsync run` on a port already taken: one clear line naming the address, exit 2, and nothing started
(no "listening" line, no peer contacted) — it used to log "listening", start its loops, then fail."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from pocsync.folder.nodedir import NodeDir
from tests.support.cli import LocalFederation, pocsync_exe


def test_a_taken_port_is_one_clear_error_before_anything_starts(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path)
    data = fed.data("eu")
    host, port = NodeDir.open(data).config.api.host_port
    with socket.create_server((host, port)) as taken:
        assert taken.getsockname()[1] == port
        proc = subprocess.run([*pocsync_exe(), "run", "--data", str(data)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    out = proc.stdout + proc.stderr
    assert f"{host}:{port} is already in use" in out and "address_in_use" in out
    assert "listening" not in out and "Traceback" not in out and "peer " not in out


def test_a_request_aiohttp_cannot_parse_is_one_warning_line_not_a_traceback(tmp_path: Path) -> None:
    """Raw non-ASCII in the query (no token needed) made aiohttp log ERROR with a whole traceback."""
    from tests.support.nodes import Federation, wait_for

    fed = Federation(tmp_path, ("un",))
    node = fed["un"].start()
    try:
        with socket.create_connection(("127.0.0.1", node.port), timeout=10) as c:
            c.sendall("GET /v1/entries?q=Österreich HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            answer = c.recv(4096)
        assert answer.split(b" ", 2)[1] == b"400"
        wait_for(lambda: "bad request from a client" in node.log.read_text(), 10, "the warning line")
        text = node.log.read_text()
        assert "Traceback" not in text and "ERROR aiohttp.server" not in text
    finally:
        node.proc.terminate()
        node.proc.wait(10)
