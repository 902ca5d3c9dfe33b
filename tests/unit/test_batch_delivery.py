"""BatchDelivery against a fake CMaRS client: halving, the auth pause, retries and giving up;
the bodies, times and batch ids each settlement carries; the log; the offsets a settlement commits.

No broker, no network, no sleeping: the waits between attempts go to a fake clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from aiokafka.structs import TopicPartition

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
    """Clocks that move only when BatchDelivery waits; the waits are kept.

    `now` is AT plus the seconds waited so far, so a time names the attempt it was taken at.
    """

    START = 1000.0

    def __init__(self) -> None:
        self.current = self.START
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.current

    def now(self) -> datetime:
        return AT + timedelta(seconds=self.current - self.START)

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


def seconds(n: float) -> datetime:
    """The fake time n seconds of waiting after AT."""
    return AT + timedelta(seconds=n)


def delivery_for(
    answer: Answer, retry: RetryPolicy | None = None, stopping: asyncio.Event | None = None
) -> tuple[BatchDelivery, FakeCmars, FakeTime, SinkMetrics]:
    metrics = SinkMetrics.create(RECIPIENT)
    client = FakeCmars(answer, metrics)
    clock = FakeTime()
    delivery = BatchDelivery(
        client,
        retry or policy(),
        metrics,
        stopping or asyncio.Event(),
        now=clock.now,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    return delivery, client, clock, metrics


async def deliver(
    batch: list[Entry], answer: Answer, retry: RetryPolicy | None = None
) -> tuple[Settlement, FakeCmars, FakeTime, SinkMetrics]:
    delivery, client, clock, metrics = delivery_for(answer, retry)
    settlement = Settlement()
    await delivery.deliver(batch, settlement)
    return settlement, client, clock, metrics


def sent(call: Call) -> dict[str, object]:
    """The BatchRequest a call put on the wire."""
    return json.loads(call.body)


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
    assert [dead.at for dead in settlement.rejected] == [AT]
    # Each half is a batch of its own: its id, and a body of its records only.
    by_id = {entry.record_id: entry for entry in batch}
    assert [sent(call) for call in client.calls] == [
        {
            "batch_id": call.batch_id,
            "sent_at": "2026-06-01T02:00:00.000Z",
            "records": [by_id[rid].request for rid in call.record_ids],
        }
        for call in client.calls
    ]
    # A receipt names the batch that delivered its record, not the batch it started in.
    assert [(done.entry.record_id, done.batch_id) for done in settlement.delivered] == [
        *[(rid, batch_id_of(every[0:4])) for rid in every[0:4]],
        (every[4], batch_id_of(every[4:5])),
        *[(rid, batch_id_of(every[6:8])) for rid in every[6:8]],
    ]
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
    # Dead-lettered at the fourth failure, 7 s of waiting after the first attempt.
    assert [dead.at for dead in settlement.rejected] == [seconds(7)] * 3
    assert {(entry.first_attempt_at, entry.last_attempt_at) for entry in batch} == {
        (AT, seconds(7))
    }


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


async def test_settlements_carry_the_batch_id_and_time_of_the_answer_that_settled_them() -> None:
    batch = entries(3)
    unsendable = Entry(outbox_topic(RECIPIENT), 0, 3, None, b"\x00")
    unsendable.problem = ("undecodable", "not a RoutedRecord", "CodecError")
    every = ids(batch)
    refusal = RecordResult(every[2], RecordStatus.REJECTED, "unknown_oci_id", "no such OCI ID")

    def answer(n: int, _: list[str]) -> CmarsError | dict[str, RecordResult]:
        # Unavailable at AT; answered one second later, after the backoff.
        return TransientFailure("unavailable", 503) if n == 1 else {every[2]: refusal}

    settlement, client, clock, _ = await deliver([*batch, unsendable], answer)
    assert clock.waits == [1.0]
    assert [(dead.entry.record_id, dead.at) for dead in settlement.rejected] == [
        (None, AT),  # before any request: nothing to wait for
        (every[2], seconds(1)),
    ]
    assert [(done.entry.record_id, done.batch_id, done.at) for done in settlement.delivered] == [
        (every[0], batch_id_of(every), seconds(1)),
        (every[1], batch_id_of(every), seconds(1)),
    ]
    assert [(e.attempts, e.first_attempt_at, e.last_attempt_at) for e in batch] == [
        (2, AT, seconds(1))
    ] * 3
    assert (unsendable.attempts, unsendable.first_attempt_at) == (0, None)
    # The retry resends the body of the first attempt, stamped with its time.
    assert [sent(call)["sent_at"] for call in client.calls] == ["2026-06-01T02:00:00.000Z"] * 2


async def test_a_refusal_after_an_auth_pause_unpauses_the_sink() -> None:
    """A 400 means CMaRS took our credential: lrx_sink_paused drops back to 0 at once."""
    batch = entries(2)
    every = ids(batch)

    def answer(n: int, record_ids: list[str]) -> CmarsError | None:
        if n == 1:
            return AuthRefused("token expired", 401)
        return BatchRefused("not an OCI ID", 400) if every[1] in record_ids else None

    settlement, client, _, metrics = await deliver(batch, answer)
    assert (
        [(call.record_ids, call.paused) for call in client.calls]
        == [
            (every, None),
            (every, 1.0),
            (every[:1], 0.0),  # the halves are sent unpaused
            (every[1:], 0.0),
        ]
    )
    assert metrics.metrics.sample("lrx_sink_paused", {"recipient": RECIPIENT}) == 0.0
    assert delivered(settlement) == [(every[0], "accepted")]
    assert rejected(settlement) == [(every[1], "malformed", "not an OCI ID", "BatchRefused")]


async def test_the_request_count_includes_every_retry_and_half() -> None:
    batch = entries(4)
    bad = ids(batch)[3]

    def answer(n: int, record_ids: list[str]) -> CmarsError | None:
        if n == 1:
            return TransientFailure("unavailable", 503)
        return BatchRefused("not an OCI ID", 400) if bad in record_ids else None

    delivery, client, _, _ = delivery_for(answer)
    await delivery.deliver(batch, Settlement())
    # 4 records, 1 retry, then halves of 2 and 1 around the bad one: 1 + 1 + 2 + 2.
    assert len(client.calls) == 6
    assert delivery.requests == 6


async def test_a_sink_stopping_mid_halving_sends_no_more_and_commits_what_settled() -> None:
    batch = entries(4)
    every = ids(batch)
    stopping = asyncio.Event()

    def answer(n: int, _: list[str]) -> CmarsError | None:
        if n == 1:
            return BatchRefused("not an OCI ID", 400)
        stopping.set()  # while the first half is in flight; it is answered all the same
        return None

    delivery, client, _, _ = delivery_for(answer, stopping=stopping)
    settlement = Settlement()
    with pytest.raises(DeliveryAbandoned):
        await delivery.deliver(batch, settlement)
    assert [call.record_ids for call in client.calls] == [every, every[:2]]
    assert delivered(settlement) == [(rid, "accepted") for rid in every[:2]]
    # The unsent half stays unsettled, to be consumed again after the restart.
    assert settlement.commit_offsets(batch) == {batch[0].tp: 2}


async def test_the_log_tells_the_operator_what_happened_to_each_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    batch = entries(2)
    every = ids(batch)
    whole, second = batch_id_of(every), batch_id_of(every[1:])

    def answer(n: int, record_ids: list[str]) -> CmarsError | None:
        outcomes = [AuthRefused("token expired", 401), TransientFailure("unavailable", 503)]
        if n <= len(outcomes):
            return outcomes[n - 1]
        if len(record_ids) == 2:
            return BatchTooLarge("request entity too large", 413)
        return TransientFailure("bad gateway", 502) if record_ids == every[1:] else None

    with caplog.at_level(logging.WARNING, logger="connectors.cmars.delivery"):
        settlement, _, _, _ = await deliver(batch, answer)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "ERROR",
            "CMaRS REFUSES OUR CREDENTIAL (HTTP 401: token expired). Sink paused: nothing is "
            f"dead-lettered; retrying batch {whole} every 60s. Check LRX_CMARS_TOKEN.",
        ),
        ("WARNING", f"batch {whole} of 2 records: unavailable (HTTP 503); retry 1 in 1.00s"),
        (
            "WARNING",
            f"batch {whole} of 2 records refused (HTTP 413: request entity too large); halving it",
        ),
        ("WARNING", f"batch {second} of 1 records: bad gateway (HTTP 502); retry 1 in 1.00s"),
        ("WARNING", f"batch {second} of 1 records: bad gateway (HTTP 502); retry 2 in 2.00s"),
        ("WARNING", f"batch {second} of 1 records: bad gateway (HTTP 502); retry 3 in 4.00s"),
        (
            "ERROR",
            f"batch {second} of 1 records: gave up after 4 failed attempts in 7s: bad gateway",
        ),
    ]
    assert delivered(settlement) == [(every[0], "accepted")]
    assert [dead.reason for dead in settlement.rejected] == ["retries_exhausted"]


async def test_by_default_times_are_utc_and_a_wait_ends_when_its_interval_is_up() -> None:
    """Without injected clocks: the real UTC time, and a real wait that lets the retry go."""
    metrics = SinkMetrics.create(RECIPIENT)
    client = FakeCmars(scripted(AuthRefused("token expired", 401)), metrics)
    # A 0 s pause keeps the real wait instant; the sink is not stopping, so it retries.
    delivery = BatchDelivery(client, policy(auth_interval=0.0), metrics, asyncio.Event())
    settlement = Settlement()
    before = datetime.now(UTC)
    async with asyncio.timeout(1):
        await delivery.deliver(entries(1), settlement)
    after = datetime.now(UTC)
    assert len(client.calls) == 2
    assert [before <= done.at <= after for done in settlement.delivered] == [True]


# --- the offsets a settlement commits


def test_commit_offsets_stop_at_each_partitions_first_unsettled_entry() -> None:
    topic = outbox_topic(RECIPIENT)
    batch = [Entry(topic, p, offset, None, b"") for p, offset in [(0, 10), (1, 5), (0, 11)]]
    batch += [Entry(topic, p, offset, None, b"") for p, offset in [(2, 8), (0, 12), (1, 6)]]
    batch += [Entry(topic, p, offset, None, b"") for p, offset in [(2, 9), (0, 13)]]
    unsettled = {(0, 12), (2, 8)}
    settlement = Settlement()
    for entry in batch:
        if (entry.partition, entry.offset) == (1, 5):
            settlement.reject(entry, "malformed", "not an OCI ID", "BatchRefused", AT)
        elif (entry.partition, entry.offset) not in unsettled:
            settlement.deliver(entry, RecordResult("r", RecordStatus.ACCEPTED), "b", AT)
    # Dead-lettered counts as settled. Partition 0 stops before 12 though 13 settled;
    # partition 2 has nothing to commit.
    assert settlement.commit_offsets(batch) == {
        TopicPartition(topic, 0): 12,
        TopicPartition(topic, 1): 7,
    }
