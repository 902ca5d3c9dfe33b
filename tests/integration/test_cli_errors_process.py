"""`lrx` as a process ends with one line naming what is wrong, never a traceback
(deploy/cli LrxGroup; the in-process cases are in tests/unit/test_cli_errors.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

LRX = str(Path(sys.executable).with_name("lrx"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "command",
    [
        ["trace", "--site", "sunnybrook", "--user", "55"],
        ["worker"],
        ["sink", "cmars", "--dry-run"],
        ["topics", "create"],
        ["topics", "describe"],
        ["recipients", "list", "--site", "sunnybrook"],
        ["users", "import", "--site", "sunnybrook", "users.csv"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_a_command_against_an_unreachable_broker_says_so_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    port = closed_port()
    (tmp_path / "users.csv").write_text("username,profile_field_ociid\ndrsmith,CA-ON-CPSO-12345\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "LRX_RUN_DIR": str(tmp_path),
        "LRX_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "LRX_ADMIN_KAFKA_TIMEOUT": "2",
    }
    result = subprocess.run(
        [LRX, *command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90
    )
    assert result.returncode in (1, 2), result.stdout + result.stderr  # 2: a usage-type error
    assert "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert f"127.0.0.1:{port}" in line, result.stderr
