"""`lrx` ends with one line naming what is wrong, never a traceback (deploy/cli LrxGroup).

In process; tests/integration/test_cli_errors_process.py runs `lrx` itself."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from deploy.cli import LrxGroup
from schemas.errors import DataError, LrxError


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
