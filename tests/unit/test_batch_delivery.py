"""BatchDelivery against a fake CMaRS client: halving, the auth pause, retries and giving up.

No broker, no network, no sleeping: the waits between attempts go to a fake clock.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from connectors.cmars.batch import Entry
from connectors.cmars.contract import RecordResult, RecordStatus, batch_id_of
from connectors.cmars.delivery import BatchDelivery, DeliveryAbandoned, Settlement
from connectors.cmars.entries import EntryMaker
from connectors.cmars.errors import (
    AuthRefused,
    BatchRefused,
    BatchTooLarge,
    CmarsError,
    TransientFailure,
)
from connectors.cmars.retry import RetryPolicy
from connectors.cmars.telemetry import SinkMetrics
from schemas.codec import Codec
from schemas.examples import routed_record
from schemas.topics import outbox_topic

RECIPIENT = "cmars"
AT = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
CODEC = Codec.default()

# What the fake CMaRS does with the n-th request (1 is the first) for these record ids:
# raise the error, answer the given results, or (None) accept every record.
Answer = Callable[[int, list[str]], CmarsError | dict[str, RecordResult] | None]


@dataclass(frozen=True)
class Call:
    batch_id: str
    body: bytes
    record_ids: list[str]
    paused: float | None  # lrx_sink_paused when the request was made


class FakeCmars:
    """CmarsClient's post_batch, answered by `answer`; every request is kept in `calls`."""

    def __init__(self, answer: Answer, metrics: SinkMetrics) -> None:
        self.answer = answer
        self.metrics = metrics
        self.calls: list[Call] = []

    async def post_batch(
        self, batch_id: str, body: bytes, record_ids: list[str]
    ) -> dict[str, RecordResult]:
        paused = self.metrics.metrics.sample("lrx_sink_paused", {"recipient": RECIPIENT})
        self.calls.append(Call(batch_id, body, list(record_ids), paused))
        outcome = self.answer(len(self.calls), list(record_ids))
        if isinstance(outcome, CmarsError):
            raise outcome
        accepted = {rid: RecordResult(rid, RecordStatus.ACCEPTED) for rid in record_ids}
        return {**accepted, **(outcome or {})}


class FakeTime:
    """A monotonic clock that moves only when BatchDelivery waits; the waits are kept."""

    def __init__(self) -> None:
        self.current = 1000.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.current += seconds


class Ceiling(random.Random):
    """Full jitter drawn at its ceiling, so every backoff is exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


def policy(**changes: float) -> RetryPolicy:
    # Backoffs 1, 2, 4, 4, ... seconds; giving up once a wait would pass 10 s of retrying.
    values = {"initial": 1.0, "cap": 4.0, "max_time": 10.0, "auth_interval": 60.0, **changes}
    return RetryPolicy(**values, rng=Ceiling())


def entries(n: int) -> list[Entry]:
    """n outbox entries as the sink makes them, one record each, offsets 0..n-1."""
    maker = EntryMaker(CODEC, RECIPIENT)
    return [
        maker.entry(
            SimpleNamespace(
                topic=outbox_topic(RECIPIENT),
                partition=0,
                offset=offset,
                key=None,
                value=CODEC.encode("RoutedRecord", routed_record(offset, recipient=RECIPIENT)),
            )
        )
        for offset in range(n)
    ]


def scripted(*outcomes: CmarsError) -> Answer:
    """The n-th request fails with the n-th outcome; every request after them succeeds."""
    return lambda n, _: outcomes[n - 1] if n <= len(outcomes) else None


def ids(batch: list[Entry]) -> list[str]:
    return [entry.record_id for entry in batch]


async def deliver(
    batch: list[Entry], answer: Answer, retry: RetryPolicy | None = None
) -> tuple[Settlement, FakeCmars, FakeTime, SinkMetrics]:
    metrics = SinkMetrics.create(RECIPIENT)
    client = FakeCmars(answer, metrics)
    clock = FakeTime()
    delivery = BatchDelivery(
        client,
        retry or policy(),
        metrics,
        asyncio.Event(),
        now=lambda: AT,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    settlement = Settlement()
    await delivery.deliver(batch, settlement)
    return settlement, client, clock, metrics


def delivered(settlement: Settlement) -> list[tuple[str, str]]:
    return [(done.entry.record_id, str(done.result.status)) for done in settlement.delivered]


def rejected(settlement: Settlement) -> list[tuple[str, str, str, str]]:
    return [
        (dead.entry.record_id, dead.reason, dead.message, dead.exception_class)
        for dead in settlement.rejected
    ]


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        (BatchRefused("records[0].oci_id: not an OCI ID", 400), "malformed"),
        (BatchTooLarge("request entity too large", 413), "too_large"),
    ],
)
async def test_a_refused_batch_is_halved_until_the_bad_record_stands_alone(
    refusal: CmarsError, reason: str
) -> None:
    batch = entries(8)
    every = ids(batch)
    bad = every[5]
    settlement, client, clock, _ = await deliver(
        batch, lambda _, record_ids: refusal if bad in record_ids else None
    )
    assert [call.record_ids for call in client.calls] == [
        every,
        every[0:4],
        every[4:8],
        every[4:6],
        every[4:5],
        every[5:6],
        every[6:8],
    ]
    assert [call.batch_id for call in client.calls] == [
        batch_id_of(call.record_ids) for call in client.calls
    ]
    assert delivered(settlement) == [(rid, "accepted") for rid in every if rid != bad]
    assert rejected(settlement) == [(bad, reason, refusal.message, type(refusal).__name__)]
    assert batch[5].attempts == 4  # in the batches of 8, 4, 2 and 1
    assert settlement.settled == set(batch)
    assert clock.waits == []  # a refusal is split at once, never waited on


async def test_a_refused_credential_pauses_the_sink_and_never_dead_letters() -> None:
    batch = entries(3)
    # The pause outlasts the 10 s retry budget three times over: auth never gives up.
    refusals = [AuthRefused("token expired", 401), AuthRefused("forbidden", 403)]
    settlement, client, clock, metrics = await deliver(batch, scripted(*refusals, refusals[0]))
    assert clock.waits == [60.0, 60.0, 60.0]
    assert len({(call.batch_id, call.body) for call in client.calls}) == 1
    assert client.calls[0].batch_id == batch_id_of(ids(batch))
    assert [call.record_ids for call in client.calls] == [ids(batch)] * 4
    assert [call.paused for call in client.calls] == [None, 1.0, 1.0, 1.0]
    assert metrics.metrics.sample("lrx_sink_paused", {"recipient": RECIPIENT}) == 0.0
    retries = {"recipient": RECIPIENT, "cause": "auth"}
    assert metrics.metrics.sample("lrx_sink_retries_total", retries) == 3.0
    assert rejected(settlement) == []
    assert delivered(settlement) == [(rid, "accepted") for rid in ids(batch)]


async def test_an_auth_pause_starts_the_retry_budget_afresh() -> None:
    unavailable = TransientFailure("unavailable", 503)
    script = [unavailable] * 3 + [AuthRefused("token expired", 401)] + [unavailable] * 3
    batch = entries(2)
    settlement, client, clock, _ = await deliver(batch, scripted(*script))
    # Without the fresh start, the failure after the pause (67 s in) would give up.
    assert clock.waits == [1.0, 2.0, 4.0, 60.0, 1.0, 2.0, 4.0]
    assert len(client.calls) == 8
    assert rejected(settlement) == []
    assert delivered(settlement) == [(rid, "accepted") for rid in ids(batch)]


async def test_transient_failures_are_retried_under_one_idempotency_key() -> None:
    script = scripted(
        TransientFailure("unavailable", 503),
        TransientFailure("no answer in time"),  # a timeout: no status
        TransientFailure("slow down", 429, retry_after=3.0),
    )
    batch = entries(4)
    settlement, client, clock, metrics = await deliver(batch, script)
    # Backoff 1 then 2; then Retry-After's 3 s plus its spread (a tenth, at most 1 s).
    assert clock.waits == pytest.approx([1.0, 2.0, 3.3])
    assert len(client.calls) == 4
    assert {(call.batch_id, call.body) for call in client.calls} == {
        (batch_id_of(ids(batch)), client.calls[0].body)
    }
    for cause in ("503", "network", "429"):
        labels = {"recipient": RECIPIENT, "cause": cause}
        assert metrics.metrics.sample("lrx_sink_retries_total", labels) == 1.0, cause
    assert delivered(settlement) == [(rid, "accepted") for rid in ids(batch)]
    assert [entry.attempts for entry in batch] == [4, 4, 4, 4]


async def test_the_batch_is_dead_lettered_as_retries_exhausted_past_the_retry_budget() -> None:
    batch = entries(3)
    settlement, client, clock, _ = await deliver(
        batch, lambda _, __: TransientFailure("unavailable", 503)
    )
    # Waits 1, 2 and 4 (7 s in); the fourth failure's 4 s more would pass the 10 s budget.
    assert clock.waits == [1.0, 2.0, 4.0]
    assert len(client.calls) == 4
    assert {call.batch_id for call in client.calls} == {batch_id_of(ids(batch))}
    message = "gave up after 4 failed attempts in 7s: unavailable"
    assert rejected(settlement) == [
        (rid, "retries_exhausted", message, "TransientFailure") for rid in ids(batch)
    ]
    assert delivered(settlement) == []
    assert [entry.attempts for entry in batch] == [4, 4, 4]


async def test_per_record_answers_duplicates_and_unsendable_entries() -> None:
    batch = entries(4)
    copy = entries(2)[1]  # record 1 again, at another offset
    copy.offset = 4
    unsendable = Entry(outbox_topic(RECIPIENT), 0, 5, None, b"\x00")
    unsendable.problem = ("undecodable", "not a RoutedRecord", "CodecError")
    every = ids(batch)
    answers = {
        every[0]: RecordResult(every[0], RecordStatus.REJECTED, "unknown_oci_id", "no such OCI ID"),
        every[2]: RecordResult(every[2], RecordStatus.DUPLICATE),
        every[3]: RecordResult(every[3], RecordStatus.REJECTED),
    }
    settlement, client, _, _ = await deliver([*batch, copy, unsendable], lambda _, __: answers)
    assert [call.record_ids for call in client.calls] == [every]  # each record once
    assert rejected(settlement) == [
        (None, "undecodable", "not a RoutedRecord", "CodecError"),
        (every[0], "unknown_oci_id", "no such OCI ID", "RecordRejected"),
        (every[3], "rejected", "rejected by cmars without a message", "RecordRejected"),
    ]
    assert delivered(settlement) == [
        (every[1], "accepted"),
        (every[1], "accepted"),
        (every[2], "duplicate"),
    ]
    assert {done.entry.offset for done in settlement.delivered} == {1, 4, 2}


async def test_a_stopping_sink_abandons_the_batch_instead_of_waiting_to_retry() -> None:
    """The default wait (no `sleep` given) ends at once when the sink stops."""
    stopping = asyncio.Event()
    metrics = SinkMetrics.create(RECIPIENT)

    def answer(_: int, __: list[str]) -> CmarsError:
        stopping.set()
        return TransientFailure("unavailable", 503)

    client = FakeCmars(answer, metrics)
    delivery = BatchDelivery(
        client, policy(initial=3600.0, cap=3600.0, max_time=0.0), metrics, stopping
    )
    settlement = Settlement()
    async with asyncio.timeout(1):
        with pytest.raises(DeliveryAbandoned):
            await delivery.deliver(entries(2), settlement)
    assert len(client.calls) == 1
    assert settlement.settled == set()
