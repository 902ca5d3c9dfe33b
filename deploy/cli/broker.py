"""`lrx broker`: fetch, start, stop and inspect the embedded Kafka broker."""

from __future__ import annotations

import time

import click

from deploy.broker import BrokerError, EmbeddedBroker
from deploy.settings import Settings


@click.group("broker")
def command() -> None:
    """The embedded single-node Kafka broker (KRaft, 127.0.0.1:LRX_BROKER_PORT)."""


def _broker(settings: Settings) -> EmbeddedBroker:
    if not settings.uses_embedded_broker:
        raise click.ClickException(
            f"LRX_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} points at an external cluster; "
            "the embedded broker is not used"
        )
    return EmbeddedBroker(settings)


@command.command()
@click.pass_obj
def fetch(settings: Settings) -> None:
    """Download the broker's jars from Maven Central (once)."""
    broker = _broker(settings)
    try:
        broker.fetch_jars()
    except BrokerError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Kafka jars in {settings.kafka_libs_dir}")


@command.command()
@click.pass_obj
def start(settings: Settings) -> None:
    """Format (first time only) and start the broker; return once it answers.

    Succeeds, and says so, if the broker is already running.
    """
    broker = _broker(settings)
    if broker.running_pid() is not None:
        click.echo(f"already running\n{broker.status().describe()}")
        return
    began = time.monotonic()
    try:
        status = broker.start()
    except BrokerError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"started in {time.monotonic() - began:.1f}s\n{status.describe()}")


@command.command()
@click.pass_obj
def stop(settings: Settings) -> None:
    """Stop the broker whose PID lrx recorded, and nothing else. Data is kept."""
    broker = _broker(settings)
    if broker.stop():
        click.echo(f"stopped broker on {broker.address}")
    else:
        click.echo(f"no broker running on {broker.address}")


@command.command()
@click.pass_obj
def status(settings: Settings) -> None:
    """Say whether the broker is up, on which address, and where its data is."""
    report = _broker(settings).status()
    click.echo(report.describe())
    if not report.running:
        raise SystemExit(3)
