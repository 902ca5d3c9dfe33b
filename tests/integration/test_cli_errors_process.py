"""`lrx` as a process ends with one line naming what is wrong, never a traceback
(deploy/cli LrxGroup; the in-process cases are in tests/unit/test_cli_errors.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

LRX = str(Path(sys.executable).with_name("lrx"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_trace_against_an_unreachable_broker_says_so_in_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "LRX_RUN_DIR": str(tmp_path),
        "LRX_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed_port()}",
        "LRX_ADMIN_KAFKA_TIMEOUT": "2",
    }
    result = subprocess.run(
        [LRX, "trace", "--site", "sunnybrook", "--user", "55"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert "127.0.0.1" in line, result.stderr
