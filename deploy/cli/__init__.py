"""The `lrx` command. Each module of this package holds one command, named after its noun."""

from __future__ import annotations

import importlib
import logging
import pkgutil

import click
from aiokafka.errors import KafkaError

from deploy.log_throttle import throttled_console
from deploy.settings import Settings, SettingsError
from schemas.errors import LrxError

__all__ = ["main", "settings_table"]


class LrxGroup(click.Group):
    """An error lrx raises on purpose, or Kafka out of reach, ends a command in one line."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except LrxError as error:
            raise click.ClickException(str(error)) from None
        except KafkaError as error:
            # Where lrx does not name the failure itself, say at least which Kafka it was.
            servers = getattr(ctx.obj, "bootstrap_servers", "the configured servers")
            raise click.ClickException(f"Kafka at {servers}: {error}") from None


@click.group(
    cls=LrxGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """lrx: the Learning Record Exchange.

    Moves proof of course completion from a Moodle LMS to CMaRS through Kafka.
    Every setting is an LRX_ environment variable; `lrx settings` lists them.
    """
    # A handler of our own, so that the throttle never reaches a host's handlers (pytest's).
    console = logging.StreamHandler() if verbose else throttled_console()
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[console],
    )
    if not verbose:
        # aiokafka narrates every group join and metadata change at INFO.
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        ctx.obj = Settings.from_env()
    except SettingsError as error:
        raise click.UsageError(str(error)) from None


@main.command("settings")
@click.option("--markdown", is_flag=True, help="Print the README's settings table.")
def show_settings(markdown: bool) -> None:
    """List every LRX_ setting with its default and meaning."""
    if markdown:
        click.echo(settings_table())
        return
    for env, default, doc in Settings.documentation():
        click.echo(f"{env}  (default: {default or '(empty)'})\n    {doc}")


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{env}` | `{d}` | {doc} |" for env, d, doc in Settings.documentation()]
    return "\n".join(rows)


# Every module in this package contributes one command (often a group) named `command`.
for _module in pkgutil.iter_modules(__path__):
    main.add_command(importlib.import_module(f"{__name__}.{_module.name}").command)
