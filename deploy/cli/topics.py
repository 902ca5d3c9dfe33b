"""`lrx topics`: apply the topic catalogue and show drift from it."""

from __future__ import annotations

import asyncio

import click

from deploy.settings import Settings
from deploy.topic_provisioning import apply_catalogue, describe_catalogue


@click.group("topics")
def command() -> None:
    """The topic catalogue (schemas/topics.py) on the configured cluster."""


@command.command()
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@click.pass_obj
def create(settings: Settings, dry_run: bool) -> None:
    """Create missing topics and reset drifted configs. Safe to run again."""
    actions = asyncio.run(apply_catalogue(settings, dry_run=dry_run))
    prefix = "would " if dry_run else ""
    for name, action in actions:
        click.echo(f"{prefix}{action}: {name}")
    if not actions:
        click.echo(f"all topics match the catalogue on {settings.bootstrap_servers}")


@command.command()
@click.pass_obj
def describe(settings: Settings) -> None:
    """Show each topic's actual settings and any drift from the catalogue."""
    states = asyncio.run(describe_catalogue(settings))
    drifted = 0
    for state in states:
        topic = state.topic
        click.echo(f"{topic.name}  [{topic.key} -> {topic.value}]  {topic.doc}")
        if state.exists:
            policy = state.configs.get("cleanup.policy")
            retention = state.configs.get("retention.ms")
            click.echo(
                f"    partitions={state.partitions} cleanup.policy={policy} "
                f"retention.ms={retention}"
            )
        if state.drift:
            drifted += 1
            click.echo(click.style(f"    DRIFT: {'; '.join(state.drift)}", fg="yellow"))
    if drifted:
        raise SystemExit(
            f"{drifted} topic(s) differ from the catalogue; `lrx topics create` fixes configs"
        )
