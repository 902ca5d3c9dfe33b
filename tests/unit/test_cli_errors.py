"""`lrx` ends with one line naming what is wrong, never a traceback (deploy/cli LrxGroup)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from deploy.cli import LrxGroup
from schemas.errors import DataError, LrxError

LRX = str(Path(sys.executable).with_name("lrx"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("error", [LrxError("the thing is wrong"), DataError("the thing is wrong")])
def test_an_lrx_error_becomes_one_line_and_exit_code_1(error: LrxError) -> None:
    @click.group(cls=LrxGroup)
    def group() -> None: ...

    @group.command()
    def fail() -> None:
        raise error

    result = CliRunner().invoke(group, ["fail"])
    assert (result.exit_code, result.output) == (1, "Error: the thing is wrong\n")


def test_any_other_error_is_not_hidden() -> None:
    @click.group(cls=LrxGroup)
    def group() -> None: ...

    @group.command()
    def fail() -> None:
        raise KeyError("a bug")

    result = CliRunner().invoke(group, ["fail"])
    assert isinstance(result.exception, KeyError)


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
