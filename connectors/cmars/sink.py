"""The CMaRS sink connector: lrx.outbox.<recipient> -> CMaRS, in batches, with a ledger and a DLQ.

One loop polls the outbox and cuts batches; one batch at a time is delivered
in a task beside it, so the next batch fills while the last is on the wire.
When a batch has fully settled (each record delivered or dead-lettered, and
the receipts and dead letters acknowledged by Kafka with acks=all) its offsets
are committed explicitly. A crash therefore means redelivery, never loss, and
redelivery is harmless: the batch id is the Idempotency-Key and CMaRS answers a
record id it already has with `duplicate`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from connectors.cmars.batch import Batcher, Entry
from connectors.cmars.client import CmarsClient
from connectors.cmars.delivery import BatchDelivery, DeliveryAbandoned, Settlement
from connectors.cmars.delivery_window import DeliveryWindow
from connectors.cmars.entries import EntryMaker
from connectors.cmars.lag import SinkLag
from connectors.cmars.retry import RetryPolicy
from connectors.cmars.schedule import Clock, Schedule, SystemClock
from connectors.cmars.settlement_writer import SettlementWriter
from connectors.cmars.telemetry import SinkMetrics
from schemas.codec import Codec
from schemas.topics import outbox_topic
from streams.kafka.connection import KafkaConnection

__all__ = ["CmarsSink", "SinkConfig"]

log = logging.getLogger(__name__)

POLL_MS = 500
# Settled batches whose receipts and commit may be under way at once, beside the batch on
# the wire; past that the loop waits, so a slow broker slows the sink instead of piling up.
FINISHING_MAX = 2


@dataclass(frozen=True)
class SinkConfig:
    """What the sink needs; deploy/wiring.py builds it from the settings."""

    kafka: KafkaConnection
    group_prefix: str  # LRX_SINK_GROUP; the group is <prefix>.<recipient>
    cmars_url: str
    cmars_token: str
    request_timeout: float
    schedule: Schedule
    policy: RetryPolicy
    batch_records: int
    batch_bytes: int
    linger: float
    session_timeout: float
    shutdown_grace: float

    def group_of(self, recipient: str) -> str:
        return f"{self.group_prefix}.{recipient}"


@dataclass(eq=False)
class _InFlight:
    batch: list[Entry]
    task: asyncio.Task[None]
    settlement: Settlement
    started: float = field(default_factory=time.monotonic)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, sink: CmarsSink) -> None:
        self.sink = sink

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.sink._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in assigned))


class CmarsSink:
    """`async with CmarsSink(config, recipient) as sink: await sink.run(stop_event)`."""

    stage = "sink.cmars"

    def __init__(
        self,
        config: SinkConfig,
        recipient: str,
        *,
        schedule: Schedule | None = None,
        clock: Clock | None = None,
        metrics: SinkMetrics | None = None,
        codec: Codec | None = None,
        policy: RetryPolicy | None = None,
        open_window_now: bool = False,
    ) -> None:
        self.config = config
        self.recipient = recipient
        self.topic = outbox_topic(recipient)
        self.metrics = metrics or SinkMetrics.create(recipient)
        self.codec = codec or Codec.default()
        self.entries = EntryMaker(self.codec, recipient)
        self.policy = policy or config.policy
        self.batcher = Batcher(config.batch_records, config.batch_bytes, config.linger)
        self.client = CmarsClient(config.cmars_url, config.cmars_token, config.request_timeout)
        self._stopping = asyncio.Event()
        self.delivery = BatchDelivery(self.client, self.policy, self.metrics, self._stopping)
        options = config.kafka.client_options()
        session_ms = int(config.session_timeout * 1000)
        self.consumer = AIOKafkaConsumer(
            group_id=config.group_of(recipient),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(500, session_ms // 3),
            **options,
        )
        self.producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **options)
        self.writer = SettlementWriter(
            self.producer, self.codec, self.metrics, recipient,
            stage=self.stage, component=f"{__name__}.{type(self).__name__}",
        )  # fmt: skip
        self.window = DeliveryWindow(
            self.consumer, schedule or config.schedule, clock or SystemClock(), open_window_now
        )
        self.lag = SinkLag(self.consumer, self.metrics.lag, recipient)
        self._inflight: _InFlight | None = None
        self._finish_lock = asyncio.Lock()
        self._finishing: deque[asyncio.Task[None]] = deque()
        self._revoking = False  # no batch is launched while a rebalance takes partitions away
        self._poll: asyncio.Task | None = None
        self._started = False

    # --- lifecycle

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self.client.start()
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe([self.topic], listener=_Rebalance(self))
        self.window.start()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            await self.consumer.stop()  # auto-commit is off: stopping commits nothing
        finally:
            await self.producer.stop()
            await self.client.stop()

    async def __aenter__(self) -> CmarsSink:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def waiting_for_window(self) -> bool:
        """True while a scheduled sink holds every partition it owns paused until its window."""
        return self.window.holds_all and not self.batcher and self._inflight is None

    # --- the loop

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; then settle or abandon the batch in flight and return."""
        stop_waiter = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                await self._step(stop_waiter)
        finally:
            stop_waiter.cancel()
            await self._wind_down()

    async def _step(self, stop_waiter: asyncio.Future) -> None:
        await self.window.follow()
        self.window.apply_pauses()
        if self._poll is None and not (self._inflight is not None and self.batcher.full):
            # A full batch waits for the one in flight; meanwhile the fetcher keeps what it
            # has prefetched. (Pausing the partitions instead would make aiokafka discard its
            # prefetched records, to be fetched again: most of the broker's work and ours.)
            self._poll = asyncio.ensure_future(
                self.consumer.getmany(timeout_ms=POLL_MS, max_records=self.batcher.max_records)
            )
        waiters: set[asyncio.Future] = {stop_waiter}
        if self._poll is not None:
            waiters.add(self._poll)
        if self._inflight is not None:
            waiters.add(self._inflight.task)
        await asyncio.wait(waiters, timeout=self._idle_timeout(), return_when="FIRST_COMPLETED")
        if self._poll is not None and self._poll.done():
            fetched = self._poll.result()
            self._poll = None
            owned = self.consumer.assignment()
            for tp, messages in fetched.items():
                if tp in owned:  # not records fetched just before a rebalance took tp away
                    self._accept(tp, messages)
        finished = None
        if self._inflight is not None and self._inflight.task.done():
            finished, self._inflight = self._inflight, None
        if self._inflight is None and not stop_waiter.done() and not self._revoking:
            batch = self.batcher.cut(drain=self.window.fetched)
            if batch:
                self._launch(batch)
        if finished is not None:
            await self._finish_beside(finished)
        self._reap_finished()
        if self.window.fetched and not (self.batcher or self._inflight or self._finishing):
            self.window.close()
        await self.lag.refresh()

    def _idle_timeout(self) -> float:
        timeout = 1.0
        if self._inflight is None and (left := self.batcher.linger_left()) is not None:
            timeout = min(timeout, left)
        if (opens_in := self.window.opens_in()) is not None:
            timeout = min(timeout, opens_in)
        return max(0.0, timeout)

    def _accept(self, tp: TopicPartition, messages: list[ConsumerRecord]) -> None:
        for message in messages:
            if not self.window.admit(tp, message.offset):
                break
            self.batcher.add(self.entries.entry(message))

    def _launch(self, batch: list[Entry]) -> None:
        settlement = Settlement()
        task = asyncio.ensure_future(self.delivery.deliver(batch, settlement))
        self._inflight = _InFlight(batch, task, settlement)

    async def _finish_beside(self, inflight: _InFlight) -> None:
        """Write a settled batch's receipts and commit it in a task of its own.

        The next batch is already on the wire, and the loop goes on decoding the one
        after, while Kafka acknowledges these receipts and the commit. Commits stay in
        batch order: tasks are started in order and _finish_lock hands itself out FIFO.
        """
        # Appended at once, so a rebalance that waits for _finishing never misses it.
        self._finishing.append(asyncio.ensure_future(self._finish(inflight)))
        while len(self._finishing) > FINISHING_MAX:
            await asyncio.wait({self._finishing[0]})
            self._reap_finished()

    def _reap_finished(self) -> None:
        """Forget finished _finish tasks; one that failed (a bug) stops the sink here."""
        while self._finishing and self._finishing[0].done():
            self._finishing.popleft().result()

    async def _settle_finishing(self) -> None:
        """Wait until every _finish task has written and committed its batch."""
        if self._finishing:
            await asyncio.wait(set(self._finishing))
            self._reap_finished()

    async def _finish(self, inflight: _InFlight | None = None) -> None:
        """Write the settled part of a batch (default: the one in flight), then commit it."""
        if inflight is None:
            inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        async with self._finish_lock:
            # Waited for, not awaited: the task's cancellation must not read as this one's.
            await asyncio.wait({inflight.task})
            failure: BaseException | None = None
            if inflight.task.cancelled() or isinstance(
                inflight.task.exception(), DeliveryAbandoned
            ):
                log.info(
                    "abandoned a batch with %d of %d records settled; the rest will be redelivered",
                    len(inflight.settlement.settled), len(inflight.batch),
                )  # fmt: skip
            else:
                failure = inflight.task.exception()  # a bug: keep what settled, then stop
            await self.writer.write(inflight.settlement)
            await self._commit(inflight.settlement.commit_offsets(inflight.batch))
            if len(inflight.settlement.settled) == len(inflight.batch):
                self.metrics.batch_seconds.labels(self.recipient).observe(
                    time.monotonic() - inflight.started
                )
            if failure is not None:
                raise failure

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit the offsets of partitions this sink still owns."""
        owned = self.consumer.assignment()
        offsets = {tp: o for tp, o in offsets.items() if tp in owned}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as error:
            # The partitions moved to another sink, which redelivers them: harmless.
            log.warning("commit of %s failed (%s); they will be redelivered", offsets, error)
            return
        self.lag.committed(offsets)

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Settle what this sink sends from partitions it is losing, before it loses them.

        aiokafka awaits this before the group rebalances, heartbeats go on meanwhile, and
        our commits still count (aiokafka#929/#933): the one moment to commit revoked
        partitions. The batch in flight gets LRX_SINK_SHUTDOWN_GRACE seconds (under the
        consumer's 30 s rebalance timeout) to settle; if it has not, its task is cancelled
        and awaited, so no request of it is left on the wire once the partitions move. Its
        settled records get their receipts and are committed; the new owner sends the rest
        again, which CMaRS answers `duplicate` if the cancelled request reached it.
        """
        self._revoking = True
        try:
            inflight = self._inflight
            if inflight is not None and any(entry.tp in revoked for entry in inflight.batch):
                grace = self.config.shutdown_grace
                done, _ = await asyncio.wait({inflight.task}, timeout=grace)
                if not done:
                    inflight.task.cancel()
                    await asyncio.wait({inflight.task})
                    log.warning(
                        "rebalance: the batch in flight did not settle within %gs; cancelled "
                        "it. Committing the %d of its %d records that settled; the new owner "
                        "of the partitions sends the rest again",
                        grace, len(inflight.settlement.settled), len(inflight.batch),
                    )  # fmt: skip
                if self._inflight is inflight:  # else the loop has handed it to _finishing
                    self._inflight = None
                    self._finishing.append(asyncio.ensure_future(self._finish(inflight)))
            if self._finishing:
                # Receipts and commits of settled batches, written while we still own the
                # partitions; a failure among them (a bug) is raised by the loop's
                # _reap_finished, not lost in aiokafka's log of listener errors.
                await asyncio.wait(set(self._finishing))
            async with self._finish_lock:
                pass
            dropped = self.batcher.drop(revoked)
        finally:
            self._revoking = False
        for tp in revoked:
            self.window.forget(tp)
            self.lag.forget(tp)
        if dropped:
            log.info("dropped %d unsent records of revoked partitions", dropped)

    async def _wind_down(self) -> None:
        self._stopping.set()
        if self._poll is not None:
            self._poll.cancel()
            await asyncio.gather(self._poll, return_exceptions=True)
            self._poll = None
        inflight = self._inflight
        if inflight is not None:
            done, _ = await asyncio.wait({inflight.task}, timeout=self.config.shutdown_grace)
            if not done:
                inflight.task.cancel()
        try:
            await self._settle_finishing()
        finally:
            await self._finish()
