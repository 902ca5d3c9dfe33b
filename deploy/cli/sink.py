"""`lrx sink cmars`: deliver lrx.outbox.cmars to CMaRS."""

from __future__ import annotations

import asyncio
import signal

import click
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from connectors.cmars.lag import partition_lags
from connectors.cmars.schedule import Schedule, ScheduleError
from connectors.cmars.sink import CmarsSink
from connectors.cmars.telemetry import SinkMetrics
from connectors.metrics import metrics_server
from deploy.settings import Settings
from deploy.wiring import kafka_connection, sink_config
from schemas.topics import outbox_topic
from streams.kafka.topic_reader import partitions_of


@click.group("sink")
def command() -> None:
    """Sink connectors: deliver an outbox topic to its recipient."""


@command.command("cmars")
@click.option(
    "--recipient",
    default="cmars",
    show_default=True,
    help="Recipient id whose outbox (lrx.outbox.<id>) goes to the CMaRS API at LRX_CMARS_URL "
    "(empty: the local emulator).",
)
@click.option(
    "--schedule",
    "schedule_text",
    default=None,
    help="'continuous' or a cron expression; overrides LRX_SINK_SCHEDULE.",
)
@click.option(
    "--now",
    "open_now",
    is_flag=True,
    help="With a cron schedule: open a delivery window at once, then follow the schedule.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show what is waiting per partition, the target and the schedule; send nothing.",
)
@click.pass_obj
def cmars(
    settings: Settings, recipient: str, schedule_text: str | None, open_now: bool, dry_run: bool
) -> None:
    """Deliver routed records to CMaRS in batches until SIGTERM or Ctrl-C.

    Batches by count, bytes and linger (LRX_SINK_BATCH_*), retries transient
    failures with backoff, pauses on a refused credential, dead-letters rejected
    records to lrx.dlq.<recipient>, writes a receipt per delivered record to
    lrx.delivery-receipts, and commits offsets only once a batch has settled.
    Metrics are on LRX_METRICS_PORT (0: off).
    """
    try:
        schedule = Schedule.parse(schedule_text or settings.sink_schedule, settings.sink_timezone)
    except ScheduleError as error:
        raise click.UsageError(str(error)) from None
    if dry_run:
        asyncio.run(_show_backlog(settings, recipient, schedule))
        return
    asyncio.run(_run(settings, recipient, schedule, open_now))


async def _run(settings: Settings, recipient: str, schedule: Schedule, open_now: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    metrics = SinkMetrics.create(recipient)
    config = sink_config(settings)
    async with (
        metrics_server(metrics.metrics, settings.metrics_host, settings.metrics_port),
        CmarsSink(
            config, recipient, schedule=schedule, metrics=metrics, open_window_now=open_now
        ) as sink,
    ):
        click.echo(
            f"sink {outbox_topic(recipient)} -> {settings.cmars_endpoint[0]} "
            f"({schedule.describe()}, group {config.group_of(recipient)})"
        )
        await sink.run(stop)
    click.echo("sink stopped")


async def _show_backlog(settings: Settings, recipient: str, schedule: Schedule) -> None:
    topic = outbox_topic(recipient)
    partitions = await partitions_of(kafka_connection(settings), topic)  # TopicMissing: one line
    consumer = AIOKafkaConsumer(
        group_id=sink_config(settings).group_of(recipient),
        enable_auto_commit=False,
        **kafka_connection(settings).client_options(),
    )
    await consumer.start()
    try:
        lags = await partition_lags(consumer, [TopicPartition(topic, p) for p in partitions])
        for lag in lags:
            click.echo(f"{topic}[{lag.tp.partition}]: committed {lag.committed}, end {lag.end}, "
                       f"waiting {lag.waiting}")  # fmt: skip
        total = sum(lag.waiting for lag in lags)
    finally:
        await consumer.stop()
    target = settings.cmars_endpoint[0]
    click.echo(f"{total} waiting; would send to {target} ({schedule.describe()})")
