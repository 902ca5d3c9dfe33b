"""Delivering one batch to CMaRS until every record in it is settled: delivered or dead-lettered.

Transient failures are retried with backoff; a refused credential pauses and
retries slowly; a refused (400) or too large (413) batch is halved until the bad
records stand alone, and only those are dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka.structs import TopicPartition

from connectors.cmars.batch import Entry
from connectors.cmars.client import CmarsClient
from connectors.cmars.contract import (
    RecordResult,
    RecordStatus,
    batch_body,
    batch_id_of,
)
from connectors.cmars.errors import AuthRefused, BatchRefused, BatchTooLarge, TransientFailure
from connectors.cmars.retry import RetryPolicy
from connectors.cmars.telemetry import SinkMetrics
from schemas.errors import LrxError
from schemas.vocabulary import DeadLetterReason

__all__ = ["BatchDelivery", "Settlement", "DeliveryAbandoned", "Delivered", "Rejected"]

log = logging.getLogger(__name__)


class DeliveryAbandoned(LrxError):
    """The sink is stopping; the unsettled rest of the batch is left for redelivery."""


@dataclass(frozen=True)
class Delivered:
    entry: Entry
    result: RecordResult
    batch_id: str
    at: datetime


@dataclass(frozen=True)
class Rejected:
    entry: Entry
    reason: str
    message: str
    exception_class: str
    at: datetime


@dataclass
class Settlement:
    """What became of a batch's entries so far; entries not in it are unsettled."""

    delivered: list[Delivered] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    settled: set[Entry] = field(default_factory=set)

    def deliver(self, entry: Entry, result: RecordResult, batch_id: str, at: datetime) -> None:
        self.delivered.append(Delivered(entry, result, batch_id, at))
        self.settled.add(entry)

    def reject(self, entry: Entry, reason: str, message: str, exc: str, at: datetime) -> None:
        self.rejected.append(Rejected(entry, reason, message, exc, at))
        self.settled.add(entry)

    def commit_offsets(self, batch: list[Entry]) -> dict[TopicPartition, int]:
        """Per partition of `batch`, the offset to commit: up to its first unsettled entry."""
        by_partition: dict[TopicPartition, list[Entry]] = defaultdict(list)
        for entry in batch:
            by_partition[entry.tp].append(entry)
        offsets: dict[TopicPartition, int] = {}
        for tp, entries in by_partition.items():
            for entry in sorted(entries, key=lambda e: e.offset):
                if entry not in self.settled:
                    break
                offsets[tp] = entry.offset + 1
        return offsets


def _utc_now() -> datetime:
    return datetime.now(UTC)


class BatchDelivery:
    def __init__(
        self,
        client: CmarsClient,
        policy: RetryPolicy,
        metrics: SinkMetrics,
        stopping: asyncio.Event,
        now: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        """`now`, `monotonic` and `sleep` are the clocks and the wait between attempts, for
        tests; by default the wait ends early, abandoning the batch, if the sink stops."""
        self.client = client
        self.policy = policy
        self.metrics = metrics
        self.stopping = stopping
        self.now = now
        self.monotonic = monotonic
        self.sleep = sleep or self._wait
        self.requests = 0

    async def deliver(self, entries: list[Entry], settlement: Settlement) -> None:
        """Settle every entry into `settlement`; raises DeliveryAbandoned if stopped first."""
        groups: dict[str, list[Entry]] = {}
        for entry in entries:
            if entry.problem is not None:
                settlement.reject(entry, *entry.problem, at=self.now())
            else:
                assert entry.record_id is not None
                # The same record twice in the outbox travels once; both copies share its fate.
                groups.setdefault(entry.record_id, []).append(entry)
        if groups:
            await self._send(list(groups.values()), settlement)

    async def _send(self, groups: list[list[Entry]], settlement: Settlement) -> None:
        record_ids = [group[0].record_id or "" for group in groups]
        batch_id = batch_id_of(record_ids)
        body = batch_body(batch_id, [group[0].request_json for group in groups], self.now())
        entries = [entry for group in groups for entry in group]
        failures = 0
        retrying_since = self.monotonic()
        recipient = self.metrics.recipient
        while True:
            if self.stopping.is_set():
                raise DeliveryAbandoned(batch_id)
            attempt_at = self.now()
            for entry in entries:
                entry.attempted(attempt_at)
            self.requests += 1
            try:
                results = await self.client.post_batch(batch_id, body, record_ids)
            except (BatchRefused, BatchTooLarge) as error:
                self.metrics.paused.labels(recipient).set(0)
                refused = isinstance(error, BatchRefused)
                reason = DeadLetterReason.MALFORMED if refused else DeadLetterReason.TOO_LARGE
                if len(groups) == 1:
                    for entry in entries:
                        settlement.reject(
                            entry, reason, error.message, type(error).__name__, self.now()
                        )
                    return
                log.warning(
                    "batch %s of %d records refused (HTTP %s: %s); halving it",
                    batch_id, len(groups), error.status, error.message,
                )  # fmt: skip
                middle = len(groups) // 2
                await self._send(groups[:middle], settlement)
                await self._send(groups[middle:], settlement)
                return
            except AuthRefused as error:
                self.metrics.paused.labels(recipient).set(1)
                self.metrics.retries.labels(recipient, "auth").inc()
                log.error(
                    "CMaRS REFUSES OUR CREDENTIAL (HTTP %s: %s). Sink paused: nothing is "
                    "dead-lettered; retrying batch %s every %.0fs. Check LRX_CMARS_TOKEN.",
                    error.status, error.message, batch_id, self.policy.auth_interval,
                )  # fmt: skip
                await self.sleep(self.policy.auth_interval)
                failures = 0
                retrying_since = self.monotonic()
                continue
            except TransientFailure as error:
                failures += 1
                wait = self.policy.backoff(failures, error.retry_after)
                self.metrics.retries.labels(recipient, str(error.status or "network")).inc()
                elapsed = self.monotonic() - retrying_since
                if self.policy.gives_up(elapsed, wait):
                    message = (
                        f"gave up after {failures} failed attempts in {elapsed:.0f}s: "
                        f"{error.message}"
                    )
                    log.error("batch %s of %d records: %s", batch_id, len(groups), message)
                    for entry in entries:
                        settlement.reject(
                            entry,
                            DeadLetterReason.RETRIES_EXHAUSTED,
                            message,
                            type(error).__name__,
                            self.now(),
                        )
                    return
                log.warning(
                    "batch %s of %d records: %s (HTTP %s); retry %d in %.2fs",
                    batch_id, len(groups), error.message, error.status, failures, wait,
                )  # fmt: skip
                await self.sleep(wait)
                continue
            self.metrics.paused.labels(recipient).set(0)
            answered_at = self.now()
            for group, record_id in zip(groups, record_ids, strict=True):
                result = results[record_id]
                for entry in group:
                    if result.status is RecordStatus.REJECTED:
                        settlement.reject(
                            entry,
                            result.code or DeadLetterReason.REJECTED,
                            result.message or f"rejected by {recipient} without a message",
                            "RecordRejected",
                            answered_at,
                        )
                    else:
                        settlement.deliver(entry, result, batch_id, answered_at)
            return

    async def _wait(self, seconds: float) -> None:
        """Sleep between attempts; a stopping sink does not wait to retry, it abandons."""
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise DeliveryAbandoned("stopping")
