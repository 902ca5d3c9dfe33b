"""The pipeline: applies routing decisions to learning records and profiles.

It holds the per-partition decision logs, updates the users and activity
completions tables, and writes every outcome through `Outputs`, so it runs the
same under the Faust agent (streams/app.py) and in unit tests with fakes.

Order of writes is what keeps a crash harmless: a pending record's tombstone is
written only after its outbox or ineligible entry has been acknowledged, so a
worker killed in between holds the record again after restart and the decision
log (streams/decision_log.py) keeps the second write from duplicating the first.

Inside `batch()` the pipeline decides many events before waiting for Kafka once:
the decisions update the in-memory logs at once, so later events of the batch
see them, while the tombstones of released records wait until the batch's
outputs are acknowledged (`settle`). The caller acks the batch's events only
after that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from schemas.topics import INELIGIBLE, PENDING, course_key, outbox_topic
from schemas.vocabulary import CompletionState, Source
from streams.decision_log import DecisionLog
from streams.eligibility import ProfileState
from streams.messages import MessageWriter
from streams.routing import (
    Hold,
    Outcome,
    Reject,
    Route,
    RoutingRules,
    Subscription,
    profile_from_table,
    profile_to_table,
)

__all__ = ["Outputs", "Pipeline", "Clock", "DecisionLogReader"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
DecisionLogReader = Callable[[Iterable[int]], Awaitable[dict[int, DecisionLog]]]

_DONE_STATES = {CompletionState.COMPLETE, CompletionState.COMPLETE_PASS}
_ACTIVITY_SOURCES = {Source.ACTIVITY_COMPLETION, Source.SUPPORTING_DOCUMENTATION}


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
        """Return once every queued message is acknowledged."""


class Pipeline:
    """One worker's pipeline state and rules; every method is safe to call concurrently."""

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
    ) -> None:
        self.rules = rules
        self.writer = writer
        self.outputs = outputs
        self.read_decision_log = read_decision_log
        self.users = users
        self.completions = completions
        self.subscriptions = subscriptions
        self.clock = clock
        self.logs: dict[int, DecisionLog] = {}
        # One event, sweep or rebalance at a time: each reads and changes the same logs.
        self.lock = asyncio.Lock()
        self._batching = False
        # Released records whose tombstones wait for their outcomes to be acknowledged.
        self._unreleased: dict[str, int] = {}  # record id -> partition

    # --- events

    async def on_learning_record(
        self, partition: int, key: bytes, record: dict[str, Any], raw: bytes | None
    ) -> None:
        async with self.lock:
            decisions = await self._decision_log(partition)
            user = key.decode()
            is_activity = self._record_activity(user, record)
            outcomes = self._decide(user, record)
            released = await self._apply(partition, key, record, raw, outcomes, decisions)
            if is_activity:
                released += await self._recheck_held(partition, key, decisions)
            self._release(partition, decisions, released)
            await self._settle_unless_batching()

    async def on_profile(self, partition: int, key: bytes, profile: dict[str, Any] | None) -> None:
        async with self.lock:
            decisions = await self._decision_log(partition)
            user = key.decode()
            if profile is None:
                self.users.pop(user, None)
            else:
                state = ProfileState.of_profile(profile, self.rules.colleges)
                self.users[user] = profile_to_table(state)
            released = await self._recheck_held(partition, key, decisions)
            self._release(partition, decisions, released)
            await self._settle_unless_batching()

    async def close_periods(self, partitions: Iterable[int]) -> int:
        """Reject held records whose reporting period has closed; returns how many."""
        async with self.lock:
            now = self.clock()
            closed = 0
            for partition in sorted(set(partitions)):
                decisions = await self._decision_log(partition)
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
                            partition, key, record, pending.raw, outcomes, decisions
                        )
                closed += len(released)
                self._release(partition, decisions, released)
            await self._settle_unless_batching()
            return closed

    async def load(self, partitions: Iterable[int]) -> None:
        """Read the decision logs of these partitions, unless already known."""
        async with self.lock:
            missing = [p for p in partitions if p not in self.logs]
            if missing:
                await self.settle()
                self.logs.update(await self.read_decision_log(missing))

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Decide several events, then wait once until all their outputs are acknowledged.

        Leaving by an exception (cancellation included) does not settle: the caller
        then acks none of the batch's events, so they are handled again.
        """
        if self._batching:
            raise RuntimeError("pipeline batches do not nest")
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
        await self.settle()

    async def settle(self) -> None:
        """Wait until every output is acknowledged, then tombstone the records released."""
        await self.outputs.flush()
        if not self._unreleased:
            return
        unreleased, self._unreleased = self._unreleased, {}
        for record_id, partition in unreleased.items():
            await self.outputs.send(PENDING, record_id.encode(), None, partition)
        await self.outputs.flush()

    async def forget(self, partitions: Iterable[int]) -> None:
        """Drop what we know of partitions another worker may now own."""
        async with self.lock:
            for partition in partitions:
                self.logs.pop(partition, None)

    def pending_count(self) -> int:
        return sum(d.pending_count() for d in self.logs.values())

    # --- internals

    async def _settle_unless_batching(self) -> None:
        if not self._batching:
            await self.settle()

    async def _decision_log(self, partition: int) -> DecisionLog:
        decisions = self.logs.get(partition)
        if decisions is None:
            # A log read back must include what this worker has written but not yet settled.
            await self.settle()
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
        activity = record.get("activity")
        if (
            not activity
            or record["source"] not in _ACTIVITY_SOURCES
            or record["completion_state"] not in _DONE_STATES
            or record.get("voided")
        ):
            return False
        completed_ms = int(record["completed_at"].timestamp() * 1000)
        completions = {k: list(v) for k, v in (self.completions.get(user) or {}).items()}
        times = completions.setdefault(activity["cmid"], [])
        if completed_ms not in times:
            times.append(completed_ms)
            times.sort()
            self.completions[user] = completions
        return True

    async def _recheck_held(self, partition: int, key: bytes, decisions: DecisionLog) -> list[str]:
        """Decide the user's held records again; returns the ids no longer held."""
        held = decisions.pending.get(key)
        if not held:
            return []
        released: list[str] = []
        user = key.decode()
        for pending in sorted(held.values(), key=lambda p: p.record["completed_at"]):
            outcomes = self._decide(user, pending.record)
            released += await self._apply(
                partition, key, pending.record, pending.raw, outcomes, decisions
            )
        return released

    async def _apply(
        self,
        partition: int,
        key: bytes,
        record: dict[str, Any],
        raw: bytes | None,
        outcomes: list[Outcome],
        decisions: DecisionLog,
    ) -> list[str]:
        """Write what is new in outcomes; returns [record id] if a held record is now decided."""
        record_id = record["record_id"]
        now = self.clock()
        held = False
        for outcome in outcomes:
            if isinstance(outcome, Route):
                if (outcome.recipient, record_id) in decisions.routed:
                    continue
                value, headers = self.writer.routed(outcome, record, raw, now)
                topic = outbox_topic(outcome.recipient)
                await self.outputs.send(topic, key, value, partition, headers)
                decisions.routed.add((outcome.recipient, record_id))
            elif isinstance(outcome, Reject):
                seen = (record_id, str(outcome.reason), outcome.recipient or "")
                if seen in decisions.rejected:
                    continue
                value, headers = self.writer.ineligible(outcome, record, raw, now)
                await self.outputs.send(INELIGIBLE, record_id.encode(), value, partition, headers)
                decisions.rejected.add(seen)
            elif isinstance(outcome, Hold):
                held = True
                if record_id in self._unreleased:
                    # Held again before its release's tombstone: that tombstone goes first.
                    await self.settle()
                if not decisions.is_pending(record_id):
                    value = self.writer.pending(record, raw)
                    await self.outputs.send(PENDING, record_id.encode(), value, partition)
                    decisions.hold(key, record, raw)
                    log.debug("holding %s: %s", record_id, outcome.detail)
        if not held and decisions.is_pending(record_id):
            return [record_id]
        return []

    def _release(self, partition: int, decisions: DecisionLog, record_ids: list[str]) -> None:
        """Forget held records now; `settle` tombstones them once their outcomes are written."""
        for record_id in record_ids:
            decisions.release(record_id)
            self._unreleased[record_id] = partition
