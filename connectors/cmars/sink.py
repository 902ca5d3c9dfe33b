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
import contextlib
import logging
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from connectors.cmars.batch import Batcher, Entry
from connectors.cmars.client import CmarsClient
from connectors.cmars.contract import (
    ROUTED_FIELDS,
    MalformedRecord,
    record_json,
    request_record,
)
from connectors.cmars.dead_letter import dead_letter_message
from connectors.cmars.delivery import BatchDelivery, DeliveryAbandoned, Settlement
from connectors.cmars.ledger import receipt_message
from connectors.cmars.retry import RetryPolicy
from connectors.cmars.schedule import Clock, Schedule, SystemClock
from connectors.cmars.telemetry import SinkMetrics
from schemas.codec import Codec, CodecError
from schemas.topics import DELIVERY_RECEIPTS, dlq_topic, outbox_topic
from streams.kafka.connection import KafkaConnection

__all__ = ["CmarsSink", "SinkConfig"]

log = logging.getLogger(__name__)

POLL_MS = 500
LAG_EVERY = 2.0  # seconds between lag refreshes; each costs a committed-offsets lookup
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
        self.dlq = dlq_topic(recipient)
        self.schedule = schedule or config.schedule
        self.clock = clock or SystemClock()
        self.metrics = metrics or SinkMetrics.create(recipient)
        self.codec = codec or Codec.default()
        self._read_routed = self.codec.projection("RoutedRecord", ROUTED_FIELDS)
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
        self._inflight: _InFlight | None = None
        self._finish_lock = asyncio.Lock()
        self._finishing: deque[asyncio.Task[None]] = deque()
        self._revoking = False  # no batch is launched while a rebalance takes partitions away
        self._poll: asyncio.Task | None = None
        self._committed: dict[TopicPartition, int] = {}
        self._lag_at = 0.0
        self._started = False
        # Scheduled mode: the window in force, or when the next one opens.
        self._open_now = open_window_now
        self._next_window: datetime | None = None
        self.window_ends: dict[TopicPartition, int] = {}
        self._fetched_to: dict[TopicPartition, int] = {}
        self.windows_opened = 0
        self.windows_closed = 0

    # --- lifecycle

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self.client.start()
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe([self.topic], listener=_Rebalance(self))
        if not self.schedule.continuous:
            now = self.clock.now()
            self._next_window = now if self._open_now else self.schedule.next_window(now)
            log.info("schedule %s; first window %s", self.schedule.describe(), self._next_window)

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
    def window_open(self) -> bool:
        return not self.schedule.continuous and self._next_window is None

    @property
    def waiting_for_window(self) -> bool:
        """True while a scheduled sink holds every partition it owns paused until its window."""
        assigned = self.consumer.assignment()
        return (
            self._next_window is not None
            and bool(assigned)
            and assigned <= self.consumer.paused()
            and not self.batcher
            and self._inflight is None
        )

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
        if not self.schedule.continuous:
            await self._follow_schedule()
        self._apply_pauses()
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
                    self._accept(messages)
        finished = None
        if self._inflight is not None and self._inflight.task.done():
            finished, self._inflight = self._inflight, None
        if self._inflight is None and not stop_waiter.done() and not self._revoking:
            batch = self.batcher.cut(drain=self.window_open and self._window_fetched())
            if batch:
                self._launch(batch)
        if finished is not None:
            await self._finish_beside(finished)
        self._reap_finished()
        if (
            self.window_open
            and self._window_fetched()
            and not self.batcher
            and self._inflight is None
            and not self._finishing
        ):
            self._close_window()
        await self._refresh_lag()

    def _idle_timeout(self) -> float:
        timeout = 1.0
        if self._inflight is None and (left := self.batcher.linger_left()) is not None:
            timeout = min(timeout, left)
        if self._next_window is not None:
            timeout = min(timeout, (self._next_window - self.clock.now()).total_seconds())
        return max(0.0, timeout)

    def _accept(self, messages: list[ConsumerRecord]) -> None:
        for message in messages:
            tp = TopicPartition(message.topic, message.partition)
            if not self.schedule.continuous:
                end = self.window_ends.get(tp) if self.window_open else None
                if end is None or message.offset >= end:
                    # Outside the window (fetched just before a pause or a rebalance took
                    # effect): leave this and the rest in Kafka for when the window has it.
                    self.consumer.seek(tp, message.offset)
                    break
                self._fetched_to[tp] = message.offset + 1
            self.batcher.add(self._entry(message))

    def _entry(self, message: ConsumerRecord) -> Entry:
        """The message as an entry ready to send, or with the problem it is dead-lettered for.

        Nothing one message holds may stop the sink: it would fail again on the same
        message after every restart, and the records behind it would never be sent.
        """
        entry = Entry(
            message.topic, message.partition, message.offset, message.key, message.value or b""
        )
        try:
            self._prepare(entry)
        except CodecError as error:
            log.warning("%s is not a RoutedRecord (%s): dead-lettering it", entry.where(), error)
            entry.problem = ("undecodable", str(error), type(error).__name__)  # "kind: what"
        except MalformedRecord as error:
            log.warning("%s record %s: %s", entry.where(), entry.record_id, error)
            entry.problem = ("malformed", str(error), type(error).__name__)
        except Exception as error:
            log.exception(
                "%s record %s cannot be made a CMaRS request: dead-lettering it as unprocessable",
                entry.where(), entry.record_id,
            )  # fmt: skip
            kind = type(error).__name__
            entry.problem = ("unprocessable", f"{kind}: {error}", kind)
        return entry

    def _prepare(self, entry: Entry) -> None:
        routed = self._read_routed(entry.value)
        entry.record_id = routed["record_id"]
        entry.routed = routed
        if routed["recipient"] != self.recipient:
            raise MalformedRecord(
                "recipient", f"is {routed['recipient']!r}, but this outbox is {self.recipient}"
            )
        entry.request = request_record(routed)
        entry.request_json = record_json(entry.request)
        entry.size = len(entry.request_json) + 1

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
            await self._record(inflight.settlement)
            await self._commit(inflight.batch, inflight.settlement)
            if len(inflight.settlement.settled) == len(inflight.batch):
                self.metrics.batch_seconds.labels(self.recipient).observe(
                    time.monotonic() - inflight.started
                )
            if failure is not None:
                raise failure

    async def _record(self, settlement: Settlement) -> None:
        """Produce receipts and dead letters and wait until Kafka has them all (acks=all)."""
        sends = await self._send_receipts(settlement)
        for dead in settlement.rejected:
            letter = dead_letter_message(
                dead.entry,
                recipient=self.recipient,
                reason=dead.reason,
                message=dead.message,
                exception_class=dead.exception_class,
                stage=self.stage,
                component=f"{__name__}.{type(self).__name__}",
                at=dead.at,
            )
            payload = self.codec.encode("DeadLetter", letter.value)
            sends.append(
                await self.producer.send(self.dlq, payload, key=letter.key, headers=letter.headers)
            )
            log.warning(
                "dead-lettered %s record %s: %s %s",
                dead.entry.where(), dead.entry.record_id, dead.reason, dead.message,
            )  # fmt: skip
        if sends:
            await asyncio.gather(*sends)
        outcomes = Counter(str(done.result.status) for done in settlement.delivered)
        for outcome, count in outcomes.items():
            self.metrics.delivered.labels(self.recipient, outcome).inc(count)
        for reason, count in Counter(dead.reason for dead in settlement.rejected).items():
            self.metrics.dead_lettered.labels(self.recipient, reason).inc(count)

    async def _send_receipts(self, settlement: Settlement) -> list[asyncio.Future]:
        """Produce the receipts in one record batch per partition: far cheaper than one
        send() per receipt."""
        if not settlement.delivered:
            return []
        partitions = sorted(await self.producer.partitions_for(DELIVERY_RECEIPTS))
        builders: dict[int, Any] = {}
        sends = []
        encode = self.codec.encode_trusted
        for done in settlement.delivered:
            key, value = receipt_message(
                done.entry, done.result, done.batch_id, self.recipient, done.at
            )
            # Trusted (the codec's uuid and timestamp checks skipped; 7.1 instead of 8.5 us a
            # receipt): every value was checked on its way in. record_id is UUID text and
            # oci_id a str (request_record), both decoded from strict UTF-8; message is a str
            # or None (parse_batch_result), which orjson read with no lone surrogate; batch_id
            # and delivered_at are our own. fastavro still refuses what does not fit.
            payload = encode("DeliveryReceipt", value)
            # The receipt goes to the partition number of the outbox record it settles rather
            # than murmur2(key) (a third of the per-record cost). Compaction still keeps one
            # receipt per key: a record id is derived from its user, the outbox is partitioned
            # by user, so every copy of a record, and so every receipt for its key, comes from
            # one outbox partition and lands in one receipts partition. Both topics have the
            # catalogue's partition count; the modulo only keeps this deterministic otherwise.
            partition = partitions[done.entry.partition % len(partitions)]
            builder = builders.get(partition)
            if builder is None:
                builder = builders[partition] = self.producer.create_batch()
            if builder.append(key=key, value=payload, timestamp=None) is None:
                sends.append(
                    await self.producer.send_batch(builder, DELIVERY_RECEIPTS, partition=partition)
                )
                builder = builders[partition] = self.producer.create_batch()
                builder.append(key=key, value=payload, timestamp=None)
        for partition, builder in builders.items():
            sends.append(
                await self.producer.send_batch(builder, DELIVERY_RECEIPTS, partition=partition)
            )
        return sends

    async def _commit(self, batch: list[Entry], settlement: Settlement) -> None:
        """Commit, per partition, up to the first entry that has not settled."""
        by_partition: dict[TopicPartition, list[Entry]] = defaultdict(list)
        for entry in batch:
            by_partition[entry.tp].append(entry)
        offsets: dict[TopicPartition, int] = {}
        for tp, entries in by_partition.items():
            for entry in sorted(entries, key=lambda e: e.offset):
                if entry not in settlement.settled:
                    break
                offsets[tp] = entry.offset + 1
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
        self._committed.update(offsets)

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
            self.window_ends.pop(tp, None)
            self._fetched_to.pop(tp, None)
            self._committed.pop(tp, None)
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(self.recipient, str(tp.partition))
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

    # --- pausing and the schedule

    def _apply_pauses(self) -> None:
        assigned = self.consumer.assignment()
        if self._next_window is not None:
            wanted = set(assigned)  # between windows Kafka is the buffer
        else:
            wanted = {tp for tp in assigned if self._reached_window_end(tp)}
        paused = self.consumer.paused() & assigned
        if wanted - paused:
            self.consumer.pause(*(wanted - paused))
        if paused - wanted:
            self.consumer.resume(*(paused - wanted))

    def _reached_window_end(self, tp: TopicPartition) -> bool:
        if not self.window_open or tp not in self.window_ends:
            return False
        return self._fetched_to.get(tp, 0) >= self.window_ends[tp]

    def _window_fetched(self) -> bool:
        assigned = self.consumer.assignment()
        return bool(assigned) and all(self._reached_window_end(tp) for tp in assigned)

    async def _follow_schedule(self) -> None:
        if self._next_window is not None and self.clock.now() >= self._next_window:
            self._next_window = None
            self.window_ends = {}
            self._fetched_to = {}
            self.windows_opened += 1
            log.info("delivery window %d opens", self.windows_opened)
        if self._next_window is None:
            await self._bound_window()

    async def _bound_window(self) -> None:
        """Read the end offsets of owned partitions that the window has no end for yet."""
        missing = [tp for tp in self.consumer.assignment() if tp not in self.window_ends]
        if not missing:
            return
        ends = await self.consumer.end_offsets(missing)
        for tp in missing:
            self._fetched_to[tp] = await self.consumer.position(tp)
        self.window_ends.update(ends)
        log.info(
            "window %d drains up to %s",
            self.windows_opened,
            {f"{tp.topic}[{tp.partition}]": end for tp, end in sorted(ends.items())},
        )

    def _close_window(self) -> None:
        self.windows_closed += 1
        self._next_window = self.schedule.next_window(self.clock.now())
        log.info("window %d drained; next window %s", self.windows_closed, self._next_window)

    # --- metrics

    async def _refresh_lag(self) -> None:
        if time.monotonic() - self._lag_at < LAG_EVERY:
            return
        self._lag_at = time.monotonic()
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            if tp not in self._committed:
                committed = await self.consumer.committed(tp)
                if committed is None:
                    committed = (await self.consumer.beginning_offsets([tp]))[tp]
                self._committed[tp] = committed
            self.metrics.lag.labels(self.recipient, str(tp.partition)).set(
                max(0, highwater - self._committed[tp])
            )
