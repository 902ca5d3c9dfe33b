"""The Faust app: one agent routes learning records and applies profile changes.

Learning records and user profiles are both keyed by site/user, so a single
agent reads the two topics, co-partitioned, in order: a profile and a record of
the same user are never handled at once, and the users and activity completions
tables live on the worker that owns the user's partition.

The agent takes events in batches (`noack_take`): it decides each event of a
batch in turn, waits once until Kafka has acknowledged all their outputs, and
only then acks the events, so an offset is never committed before its outputs
exist. Waiting per batch instead of per record is what lets the producer send
many records per request.

A failure that is not about an event's data (Kafka down, an output not
acknowledged, a decision log that cannot be read) crashes the worker rather
than the agent alone: Faust would restart the agent's actor, read on past the
unacked batch and, once later events are acked, commit past it. A crashed
worker restarts from its committed offsets instead. Data that cannot be handled
(undecodable, wrong key or record id, content the rules reject by raising) is
dead-lettered to lrx.dlq.pipeline, and the partition moves on.

`concurrency=1` and at-least-once processing: faust-streaming can commit past an
in-flight event with more (faust #606), and its exactly_once mode has open
duplicate and crash reports (#517, #177, #323, #440). Duplicates after a crash
are instead prevented by the decision log (streams/worker/decision_log.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import faust
from faust.streams import _current_event

from schemas.codec import Codec
from schemas.dead_letter import Consumed, dead_letter_message
from schemas.errors import DataError
from schemas.topics import LEARNING_RECORDS, PIPELINE_DEAD_LETTERS, USER_PROFILES, user_key
from schemas.vocabulary import DeadLetterReason
from streams.kafka.connection import KafkaConnection
from streams.kafka.topic_reader import partitions_of
from streams.rules.record_identity import record_id_of
from streams.rules.routing import RoutingRules
from streams.worker.decision_log import read_decision_log
from streams.worker.faust_codec import CODEC_NAME, register_codec
from streams.worker.faust_transport import FaustApp
from streams.worker.kafka_watch import KafkaWatch
from streams.worker.messages import Decoded, MessageWriter
from streams.worker.observer import Decision, PipelineObserver
from streams.worker.pipeline import Clock, Pipeline
from streams.worker.subscriptions import SubscriptionReader

__all__ = ["PipelineApp", "WorkerConfig"]

log = logging.getLogger(__name__)

STAGE = "streams.worker.pipeline"


@dataclass(frozen=True)
class Problem:
    """Why an input event is dead-lettered rather than handled."""

    reason: DeadLetterReason
    message: str
    exception_class: str = "InvalidEvent"


class FaustOutputs:
    """Outputs through the app's producer (Faust also flushes it before committing offsets)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._unacknowledged: list[Awaitable[Any]] = []

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        delivery = await self.app.producer.send(topic, key, value, partition, None, headers)
        self._unacknowledged.append(delivery)

    async def flush(self) -> None:
        """Wait for the acknowledgements of what was sent; a failed delivery raises."""
        deliveries, self._unacknowledged = self._unacknowledged, []
        if deliveries:
            await asyncio.gather(*deliveries)

    async def drain(self) -> None:
        """Wait for what was sent to be acknowledged or to fail; failures are dropped."""
        deliveries, self._unacknowledged = self._unacknowledged, []
        if deliveries:
            await asyncio.gather(*deliveries, return_exceptions=True)


@dataclass(frozen=True)
class WorkerConfig:
    """What the worker needs; deploy/wiring.py builds it from the settings."""

    app_id: str
    faust_options: Mapping[str, Any]  # faust.App keyword arguments
    datadir: Path
    kafka: KafkaConnection  # the worker's own readers (decision log, subscriptions)
    read_timeout: float  # LRX_PIPELINE_READ_TIMEOUT
    recipients: Sequence[str]
    rules: RoutingRules
    topic_partitions: int
    batch_size: int
    batch_wait: float
    sweep_interval: float


class PipelineApp:
    """The Faust app with the pipeline and subscription reader it drives."""

    def __init__(
        self,
        config: WorkerConfig,
        clock: Clock,
        observer: PipelineObserver | None = None,
        codec: Codec | None = None,
    ) -> None:
        self.config = config
        self.observer = observer or PipelineObserver()
        self.codec = codec or Codec.default()
        register_codec(self.codec)
        self.clock = clock
        config.datadir.parent.mkdir(parents=True, exist_ok=True)
        self.app = FaustApp(config.app_id, **config.faust_options)
        rules = config.rules
        self.subscriptions = SubscriptionReader(
            config.kafka, config.read_timeout, self.codec, rules.directory, self.observer
        )
        table_options: dict[str, Any] = {
            "partitions": config.topic_partitions,
            "key_type": str,
        }
        self.users = self.app.Table(
            "users", help="OCI ID (or why none) per site/user", **table_options
        )
        self.completions = self.app.Table(
            "activity-completions",
            help="completed activity cmids per site/user, with their completion times",
            **table_options,
        )

        async def read_logs(partitions: Any) -> Any:
            return await read_decision_log(
                config.kafka,
                config.read_timeout,
                config.recipients,
                self.codec,
                partitions,
                self.observer,
            )

        # The agent and the period sweep each write through a handle of their own.
        self.outputs = FaustOutputs(self.app)
        self.sweep_outputs = FaustOutputs(self.app)
        self.pipeline = Pipeline(
            rules,
            MessageWriter(self.codec),
            self.outputs,
            read_logs,
            self.users,
            self.completions,
            self.subscriptions,
            self.clock,
            self.observer,
        )
        self._wire()

    def _wire(self) -> None:
        app = self.app
        inputs = app.topic(
            LEARNING_RECORDS,
            USER_PROFILES,
            key_type=bytes,
            key_serializer="raw",
            value_serializer=CODEC_NAME,
        )

        config = self.config

        @app.agent(inputs, name="route-records", concurrency=1)
        async def route_records(stream: faust.Stream) -> None:
            # `take` and `take_events` ack a batch when the loop body is left, even by
            # cancellation at shutdown; `noack_take` leaves acking to us, after handling,
            # so an interrupted batch stays uncommitted.
            batches = stream.noack_take(config.batch_size, config.batch_wait)
            await self.route(batches, stream.ack)

        @app.task
        async def read_subscriptions() -> None:
            await self.subscriptions.run()

        @app.task
        async def watch_kafka() -> None:
            probe = partial(partitions_of, config.kafka, LEARNING_RECORDS)
            await KafkaWatch(probe, config.read_timeout, self.crash).run()

        @app.timer(interval=config.sweep_interval)
        async def close_periods() -> None:
            if app.rebalancing or not app.tables.recovery.completed.is_set():
                return
            if not self.subscriptions.ready.is_set():
                return
            partitions = self.assigned_partitions()
            try:
                async with self.pipeline.batch(self.sweep_outputs):
                    closed = await self.pipeline.close_periods(partitions)
            except Exception as error:
                await self.crash(error)
                return
            if closed:
                log.info("%s held records closed with their period", closed)

        @app.on_partitions_assigned.connect
        async def log_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
            mine = sorted(tp.partition for tp in assigned if tp.topic == LEARNING_RECORDS)
            log.info("assigned %s partitions %s", LEARNING_RECORDS, mine)

        @app.on_partitions_revoked.connect
        async def forget_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
            await self.pipeline.forget(
                tp.partition for tp in revoked if tp.topic == LEARNING_RECORDS
            )

        self.route_records = route_records

    def assigned_partitions(self) -> set[int]:
        return {
            tp.partition for tp in self.app.consumer.assignment() if tp.topic == LEARNING_RECORDS
        }

    async def route(
        self,
        batches: AsyncIterable[list[Any]],
        ack: Callable[[Any], Awaitable[Any]],
    ) -> None:
        """Handle each batch, then ack its events; a failure crashes the worker, acking none.

        After a crash it returns rather than raise: Faust's supervisor would restart a
        raising actor, which would read on past the unacked batch.
        """
        async for events in batches:
            began = time.perf_counter()
            try:
                await self.handle_batch(events)
            except Exception as error:
                await self.crash(error)
                return
            for event in events:
                await ack(event)
            self.observer.batch_settled(len(events), time.perf_counter() - began)

    async def crash(self, error: BaseException) -> None:
        """Stop the worker: it restarts from its committed offsets, losing nothing."""
        log.critical(
            "the pipeline failed on something other than an event's data; the worker stops "
            "and will restart from its committed offsets: %s: %s",
            type(error).__name__,
            error,
        )
        self.observer.crashed(error)
        await self.app.crash(error)

    async def handle_batch(self, events: list[Any]) -> None:
        """Handle events in order; returns once all their outputs are acknowledged."""
        await self.subscriptions.ready.wait()
        async with self.pipeline.batch(self.outputs):
            # Every assigned partition's decision log in one read, not one per partition.
            await self.pipeline.load(self.assigned_partitions())
            try:
                for event in events:
                    # Tables take the changelog partition of a write from the current event;
                    # `noack_take` sets it only in its own background task, not the agent's.
                    _current_event.set(weakref.ref(event))
                    await self.handle(event)
            finally:
                _current_event.set(None)

    async def handle(self, event: Any) -> None:
        """Handle one input event; one whose data cannot be handled is dead-lettered."""
        message = event.message
        value: Decoded | None = event.value
        try:
            problem = await self._dispatch(message, value)
        except DataError as error:  # one bad record must not stop the partition
            log.exception(
                "%s[%s]@%s could not be processed", message.topic, message.partition, message.offset
            )
            text = f"{type(error).__name__}: {error}"
            problem = Problem(DeadLetterReason.UNPROCESSABLE, text, type(error).__name__)
        if problem is not None:
            await self.dead_letter(message, value, problem)

    async def _dispatch(self, message: Any, value: Decoded | None) -> Problem | None:
        key: bytes | None = message.key
        partition: int = message.partition
        if message.topic == USER_PROFILES:
            if key is None:
                return Problem(
                    DeadLetterReason.MISSING_KEY, "a user profile has no key (site/user)"
                )
            if value is None:
                await self.pipeline.on_profile(partition, key, None)
                return None
            if value.error is not None:
                return Problem(DeadLetterReason(value.error.kind), str(value.error), "CodecError")
            if value.name != "UserProfile":
                return Problem(
                    DeadLetterReason.WRONG_SCHEMA,
                    f"{value.name} on {USER_PROFILES}, expected UserProfile",
                )
            assert value.record is not None
            expected = user_key(value.record["site"], value.record["user_id"])
            if key != expected:
                return Problem(
                    DeadLetterReason.WRONG_KEY, f"key {key!r} is not site/user {expected!r}"
                )
            await self.pipeline.on_profile(partition, key, value.record)
            return None
        if value is None:
            return Problem(DeadLetterReason.TOMBSTONE, f"{LEARNING_RECORDS} takes no tombstones")
        if value.error is not None:
            return Problem(DeadLetterReason(value.error.kind), str(value.error), "CodecError")
        if value.name != "LearningRecord":
            return Problem(
                DeadLetterReason.WRONG_SCHEMA,
                f"{value.name} on {LEARNING_RECORDS}, expected LearningRecord",
            )
        assert value.record is not None
        expected = user_key(value.record["site"], value.record["user_id"])
        if key != expected:
            return Problem(DeadLetterReason.WRONG_KEY, f"key {key!r} is not site/user {expected!r}")
        # Dedupe trusts the record id: one that is not the record's own would let a
        # publisher other than the gateway send the same completion twice.
        record_id = value.record["record_id"]
        own_id = record_id_of(value.record)
        if record_id != own_id:
            return Problem(
                DeadLetterReason.WRONG_RECORD_ID,
                f"record_id {record_id!r} is not the record's id {own_id!r}",
            )
        await self.pipeline.on_learning_record(partition, key, value)
        return None

    async def dead_letter(self, message: Any, value: Decoded | None, problem: Problem) -> None:
        now = self.clock()
        record_id = None
        if value is not None and value.record is not None:
            record_id = value.record.get("record_id")
        consumed = Consumed(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            (value.raw or b"") if value is not None else b"",
        )
        letter = dead_letter_message(
            consumed,
            key=message.key,
            recipient="",
            record_id=record_id,
            reason=problem.reason,
            message=problem.message,
            exception_class=problem.exception_class,
            stage=STAGE,
            connector="lrx worker",
            component=type(self).__qualname__,
            at=now,
        )
        log.warning(
            "%s[%s]@%s dead-lettered to %s: %s: %s",
            message.topic,
            message.partition,
            message.offset,
            PIPELINE_DEAD_LETTERS,
            problem.reason,
            problem.message,
        )
        encoded = self.codec.encode("DeadLetter", letter.value)
        await self.outputs.send(PIPELINE_DEAD_LETTERS, letter.key, encoded, None, letter.headers)
        self.observer.decided(Decision.DEAD_LETTERED, str(problem.reason))
