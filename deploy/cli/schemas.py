"""`lrx schemas`: check that the Avro contracts stay compatible with their history."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from schemas.codec import AVRO_DIR, HISTORY_DIR, ContractError, load_contracts, load_history
from schemas.compatibility import check_compatibility, record_versions, unrecorded_versions

__all__ = ["command"]

_avro_dir = click.option(
    "--avro-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=AVRO_DIR,
    show_default=True,
    help="Folder of the current .avsc contracts.",
)
_history_dir = click.option(
    "--history-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=HISTORY_DIR,
    show_default=True,
    help="Folder of committed schema versions (<Message>/v<N>.avsc).",
)


@click.group("schemas")
def command() -> None:
    """The Avro contracts in schemas/avro and their committed history."""


@command.command("check")
@_avro_dir
@_history_dir
def check(avro_dir: Path, history_dir: Path) -> None:
    """Check each current schema against its committed versions.

    Applies the Avro schema-resolution rules with each version under
    schemas/history as writer and the current schema as reader, and checks
    that each current schema is itself committed. Exits 1, naming the
    message, version and field, if anything is incompatible.
    """
    try:
        contracts, history = load_contracts(avro_dir), load_history(history_dir)
    except ContractError as error:
        raise click.ClickException(str(error)) from None
    problems = check_compatibility(contracts, history)
    for problem in problems:
        click.echo(f"INCOMPATIBLE {problem}", err=True)
    pending = unrecorded_versions(contracts, history)
    for name, version in pending.items():
        click.echo(
            f"UNRECORDED {name}: the current schema is not in {history_dir}; "
            f"once it is compatible, `lrx schemas record` writes it as v{version}",
            err=True,
        )
    for name in sorted(contracts):
        versions = ", ".join(f"v{v}" for v in sorted(history.get(name, {}))) or "none"
        click.echo(f"{name}: reads committed versions {versions}")
    if problems or pending:
        sys.exit(1)
    click.echo(f"ok: {len(contracts)} schemas compatible with their history")


@command.command("record")
@_avro_dir
@_history_dir
@click.option("--dry-run", is_flag=True, help="Print what would be written; write nothing.")
def record(avro_dir: Path, history_dir: Path, dry_run: bool) -> None:
    """Commit each changed current schema to history as its next version.

    Refuses while any current schema cannot read an earlier version, because a
    recorded version is a promise that the codec can read it forever. Commit the
    new files with git afterwards.
    """
    try:
        contracts, history = load_contracts(avro_dir), load_history(history_dir)
    except ContractError as error:
        raise click.ClickException(str(error)) from None
    problems = check_compatibility(contracts, history)
    if problems:
        for problem in problems:
            click.echo(f"INCOMPATIBLE {problem}", err=True)
        raise click.ClickException("not recording: fix the incompatibilities first")
    pending = unrecorded_versions(contracts, history)
    if not pending:
        click.echo("nothing to record: every current schema is in history")
        return
    if dry_run:
        for name, version in pending.items():
            click.echo(f"would write {history_dir / name / f'v{version}.avsc'}")
        return
    for path in record_versions(contracts, pending, history_dir):
        click.echo(f"wrote {path}")
