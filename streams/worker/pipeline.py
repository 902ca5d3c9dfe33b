"""The pipeline: applies routing decisions to learning records and profiles.

It holds the per-partition decision logs, updates the users and activity
completions tables, and writes every outcome through `Outputs`, so it runs the
same under the Faust agent (streams/worker/app.py) and in unit tests with fakes.

Order of writes is what keeps a crash harmless: a pending record's tombstone is
written only after its outbox or ineligible entry has been acknowledged, so a
worker killed in between holds the record again after restart and the decision
log (streams/worker/decision_log.py) keeps the second write from duplicating the first.

Inside `batch()` the pipeline decides many events before waiting for Kafka once:
the decisions update the in-memory logs at once, so later events of the batch
see them, while the tombstones of released records wait until the batch's
outputs are acknowledged (`settle`). The caller acks the batch's events only
after that. A batch that fails drops every in-memory decision, since some of its
writes may never land: the next batch reads the decision logs back from Kafka.
Batches run one at a time, each with its own output handle, so the period sweep
and the agent never settle (or fail) each other's writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from schemas.topics import INELIGIBLE, PENDING, course_key, outbox_topic
from streams.rules.activity_completions import with_completion
from streams.rules.eligibility import ProfileState, completed_activity
from streams.rules.routing import (
    Hold,
    Outcome,
    Reject,
    Route,
    RoutingRules,
    Subscription,
    profile_from_table,
    profile_to_table,
)
from streams.worker.decision_log import DecisionLog
from streams.worker.messages import Decoded, MessageWriter
from streams.worker.observer import Decision, PipelineObserver

__all__ = ["Outputs", "Pipeline", "Clock", "DecisionLogReader"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
DecisionLogReader = Callable[[Iterable[int]], Awaitable[dict[int, DecisionLog]]]


class Outputs(Protocol):
    """Where the pipeline writes: Kafka under Faust, a list in unit tests."""

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Queue a message; it need not be acknowledged on return."""

    async def flush(self) -> None:
        """Return once every queued message is acknowledged; a failed one raises."""

    async def drain(self) -> None:
        """Wait until every queued message is acknowledged or failed, and forget them all."""


class _Batch:
    """One caller's writes in flight: its output handle and its records awaiting tombstones."""

    def __init__(self, outputs: Outputs) -> None:
        self.outputs = outputs
        self.owner = asyncio.current_task()
        # Released records whose tombstones wait for their outcomes to be acknowledged.
        self.unreleased: dict[str, int] = {}  # record id -> partition


class Pipeline:
    """One worker's pipeline state and rules; one batch at a time, whoever calls."""

    def __init__(
        self,
        rules: RoutingRules,
        writer: MessageWriter,
        outputs: Outputs,
        read_decision_log: DecisionLogReader,
        users: MutableMapping[str, Any],
        completions: MutableMapping[str, Any],
        subscriptions: Mapping[bytes, Subscription],
        clock: Clock = lambda: datetime.now(UTC),
        observer: PipelineObserver | None = None,
    ) -> None:
        self.rules = rules
        self.writer = writer
        self.outputs = outputs
        self.read_decision_log = read_decision_log
        self.users = users
        self.completions = completions
        self.subscriptions = subscriptions
        self.clock = clock
        self.observer = observer or PipelineObserver()
        self.logs: dict[int, DecisionLog] = {}
        # A batch holds the lock from its first decision until its outputs are
        # acknowledged, so an agent batch and a period sweep never share writes.
        self.lock = asyncio.Lock()
        self._batch: _Batch | None = None
        # Output handles of batches that failed: their writes may still land, and must
        # have landed (or failed) before a decision log is read back again.
        self._abandoned: list[Outputs] = []

    # --- events

    async def on_learning_record(self, partition: int, key: bytes, value: Decoded) -> None:
        async with self._step() as current:
            decisions = await self._decision_log(current, partition)
            user = key.decode()
            is_activity = self._record_activity(user, value.record)
            outcomes = self._decide(user, value.record)
            released = await self._apply(current, partition, key, value, outcomes, decisions)
            if is_activity:
                released += await self._recheck_held(current, partition, key, decisions)
            self._release(current, partition, decisions, released)

    async def on_profile(self, partition: int, key: bytes, profile: dict[str, Any] | None) -> None:
        async with self._step() as current:
            decisions = await self._decision_log(current, partition)
            user = key.decode()
            if profile is None:
                self.users.pop(user, None)
            else:
                state = ProfileState.of_profile(profile, self.rules.colleges)
                self.users[user] = profile_to_table(state)
            released = await self._recheck_held(current, partition, key, decisions)
            self._release(current, partition, decisions, released)

    async def close_periods(self, partitions: Iterable[int]) -> int:
        """Reject held records whose reporting period has closed; returns how many."""
        async with self._step() as current:
            now = self.clock()
            closed = 0
            for partition in sorted(set(partitions)):
                decisions = await self._decision_log(current, partition)
                released: list[str] = []
                for key, held in list(decisions.pending.items()):
                    user = key.decode()
                    for pending in list(held.values()):
                        record = pending.record
                        outcomes = self.rules.close(
                            record,
                            profile_from_table(self.users.get(user)),
                            self._subscription_of(record),
                            self.completions.get(user),
                            now,
                        )
                        released += await self._apply(
                            current, partition, key, pending, outcomes, decisions
                        )
                closed += len(released)
                self._release(current, partition, decisions, released)
            return closed

    async def load(self, partitions: Iterable[int]) -> None:
        """Read the decision logs of these partitions, unless already known."""
        async with self._step() as current:
            missing = [p for p in partitions if p not in self.logs]
            if missing:
                await self._before_reading_logs(current)
                self.logs.update(await self.read_decision_log(missing))

    @asynccontextmanager
    async def batch(self, outputs: Outputs | None = None) -> AsyncIterator[None]:
        """Decide several events, then wait once until all their outputs are acknowledged.

        `outputs` is this caller's own handle (default: the pipeline's). Leaving by an
        exception (cancellation included) does not settle, and drops every decision
        held in memory: the caller acks none of the batch's events, so they are
        handled again against decision logs read back from Kafka.
        """
        current = self._batch
        if current is not None and current.owner is asyncio.current_task():
            raise RuntimeError("pipeline batches do not nest")
        async with self.lock:
            current = _Batch(outputs or self.outputs)
            self._batch = current
            try:
                yield
                await self._settle(current)
            except BaseException:
                self._abandon(current)
                raise
            finally:
                self._batch = None
                self.observer.pending(self.pending_count())

    async def forget(self, partitions: Iterable[int]) -> None:
        """Drop what we know of partitions another worker may now own."""
        async with self.lock:
            for partition in partitions:
                self.logs.pop(partition, None)

    def pending_count(self) -> int:
        return sum(d.pending_count() for d in self.logs.values())

    # --- internals

    @asynccontextmanager
    async def _step(self) -> AsyncIterator[_Batch]:
        """The caller's batch, or a batch of this one step when called outside one."""
        current = self._batch
        if current is not None and current.owner is asyncio.current_task():
            yield current
            return
        async with self.batch():
            assert self._batch is not None
            yield self._batch

    async def _settle(self, current: _Batch) -> None:
        """Wait until the batch's outputs are acknowledged, then tombstone what it released."""
        await current.outputs.flush()
        if not current.unreleased:
            return
        unreleased, current.unreleased = current.unreleased, {}
        for record_id, partition in unreleased.items():
            await current.outputs.send(PENDING, record_id.encode(), None, partition)
        await current.outputs.flush()

    def _abandon(self, current: _Batch) -> None:
        """Forget every in-memory decision: some of them may never reach Kafka."""
        if self.logs:
            log.warning(
                "a batch failed: decision logs of partitions %s dropped, to be read again",
                sorted(self.logs),
            )
        self.logs.clear()
        current.unreleased.clear()
        self._abandoned.append(current.outputs)

    async def _before_reading_logs(self, current: _Batch) -> None:
        # A log read back must include what this worker has written: its own batch's
        # writes, and those of failed batches that may still be in flight.
        await self._settle(current)
        abandoned, self._abandoned = self._abandoned, []
        for outputs in abandoned:
            await outputs.drain()

    async def _decision_log(self, current: _Batch, partition: int) -> DecisionLog:
        decisions = self.logs.get(partition)
        if decisions is None:
            await self._before_reading_logs(current)
            decisions = (await self.read_decision_log([partition]))[partition]
            self.logs[partition] = decisions
        return decisions

    def _subscription_of(self, record: Mapping[str, Any]) -> Subscription | None:
        return self.subscriptions.get(course_key(record["site"], record["course"]["id"]))

    def _decide(self, user: str, record: Mapping[str, Any]) -> list[Outcome]:
        return self.rules.decide(
            record,
            profile_from_table(self.users.get(user)),
            self._subscription_of(record),
            self.completions.get(user),
            self.clock(),
        )

    def _record_activity(self, user: str, record: Mapping[str, Any]) -> bool:
        """Remember a completed activity in the user's completions; True if it was one."""
        if completed_activity(record) is None:
            return False
        updated = with_completion(self.completions.get(user), record)
        if updated is not None:
            self.completions[user] = updated
        return True

    async def _recheck_held(
        self, current: _Batch, partition: int, key: bytes, decisions: DecisionLog
    ) -> list[str]:
        """Decide the user's held records again; returns the ids no longer held."""
        held = decisions.pending.get(key)
        if not held:
            return []
        released: list[str] = []
        user = key.decode()
        for pending in sorted(held.values(), key=lambda p: p.record["completed_at"]):
            outcomes = self._decide(user, pending.record)
            released += await self._apply(current, partition, key, pending, outcomes, decisions)
        return released

    async def _apply(
        self,
        current: _Batch,
        partition: int,
        key: bytes,
        value: Decoded,
        outcomes: list[Outcome],
        decisions: DecisionLog,
    ) -> list[str]:
        """Write what is new in outcomes; returns [record id] if a held record is now decided."""
        record_id = value.record["record_id"]
        if record_id in decisions.unreadable:
            log.error(
                "record %s is not decided again: partition %s has an output of it that "
                "cannot be read back",
                record_id,
                partition,
            )
            return []
        now = self.clock()
        # Every message is built before any is sent, so a record whose content cannot
        # be written fails (and is dead-lettered) before any of its outputs exists.
        messages: list[tuple[str, bytes, bytes, list[tuple[str, bytes]] | None]] = []
        routed: list[tuple[str, str]] = []
        rejected: list[tuple[str, str, str]] = []
        hold: Hold | None = None
        for outcome in outcomes:
            if isinstance(outcome, Route):
                if (outcome.recipient, record_id) in decisions.routed:
                    continue
                encoded, headers = self.writer.routed(outcome, value, now)
                messages.append((outbox_topic(outcome.recipient), key, encoded, headers))
                routed.append((outcome.recipient, record_id))
            elif isinstance(outcome, Reject):
                seen = (record_id, str(outcome.reason), outcome.recipient or "")
                if seen in decisions.rejected:
                    continue
                encoded, headers = self.writer.ineligible(outcome, value, now)
                messages.append((INELIGIBLE, record_id.encode(), encoded, headers))
                rejected.append(seen)
            elif isinstance(outcome, Hold):
                hold = outcome
        held_value = None
        if hold is not None and not decisions.is_pending(record_id):
            held_value = self.writer.pending(value)
        for topic, message_key, encoded, headers in messages:
            await current.outputs.send(topic, message_key, encoded, partition, headers)
        decisions.routed.update(routed)
        decisions.rejected.update(rejected)
        for _ in routed:
            self.observer.decided(Decision.ROUTED)
        for _, reason, _ in rejected:
            self.observer.decided(Decision.INELIGIBLE, reason)
        if hold is None:
            return [record_id] if decisions.is_pending(record_id) else []
        if record_id in current.unreleased:
            # Held again before its release's tombstone: that tombstone goes first.
            await self._settle(current)
        if held_value is not None:
            await current.outputs.send(PENDING, record_id.encode(), held_value, partition)
            decisions.hold(key, value)
            self.observer.decided(Decision.HELD, str(hold.reason))
            log.debug("holding %s: %s", record_id, hold.detail)
        return []

    def _release(
        self, current: _Batch, partition: int, decisions: DecisionLog, record_ids: list[str]
    ) -> None:
        """Forget held records now; settling tombstones them once their outcomes are written."""
        for record_id in record_ids:
            decisions.release(record_id)
            current.unreleased[record_id] = partition
