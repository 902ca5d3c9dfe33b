"""Unit tests of the pipeline's handling, with in-memory outputs and tables (no Kafka)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

from deploy import wiring
from deploy.settings import Settings
from deploy.worker_metrics import WorkerMetrics
from schemas.codec import CodecError
from schemas.dead_letter import HEADER_PREFIX
from schemas.topics import (
    INELIGIBLE,
    LEARNING_RECORDS,
    PENDING,
    PIPELINE_DEAD_LETTERS,
    USER_PROFILES,
    course_key,
    outbox_topic,
)
from schemas.vocabulary import DeadLetterReason
from streams.rules.colleges import CollegeRegistry
from streams.rules.oci_id import OciId
from streams.rules.recipients import RecipientDirectory
from streams.rules.reporting_period import ReportingCalendar
from streams.rules.routing import Reject, Route, RoutingRules, Subscription
from streams.worker.app import PipelineApp
from streams.worker.decision_log import DecisionLog, DecisionLogError, apply_output
from streams.worker.messages import Decoded, MessageWriter
from streams.worker.observer import PipelineObserver
from streams.worker.pipeline import Pipeline
from tests.support.records import CODEC, SITE, learning_record, profile

KEY = f"{SITE}/u1".encode()


class RecordingOutputs:
    """Outputs that remember what was sent, and which sends a flush acknowledged."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int]] = []
        self.headers: list[list[tuple[str, bytes]] | None] = []  # of each sent message
        self.flushed = 0  # how many of `sent` were acknowledged by a flush
        self.acknowledged_before: list[int] = []  # per sent message: how many were, then

    async def send(self, topic, key, value, partition, headers=None) -> None:
        self.acknowledged_before.append(self.flushed)
        self.sent.append((topic, key, value, partition))
        self.headers.append(headers)

    async def flush(self) -> None:
        self.flushed = len(self.sent)

    async def drain(self) -> None:
        self.flushed = len(self.sent)

    def to(self, topic: str) -> list[tuple[str, bytes | None, bytes | None, int]]:
        return [s for s in self.sent if s[0] == topic]


class Clock:
    def __init__(self, now: str) -> None:
        self.now = datetime.fromisoformat(now)

    def __call__(self) -> datetime:
        return self.now


def make_pipeline(
    clock: Clock,
    logs: dict[int, DecisionLog] | None = None,
    observer: PipelineObserver | None = None,
) -> tuple[Pipeline, RecordingOutputs, list[Iterable[int]]]:
    settings = Settings()
    directory = RecipientDirectory.from_settings(settings.recipients, settings.recipient_aliases)
    rules = RoutingRules(CollegeRegistry.load(), directory, ReportingCalendar())
    outputs = RecordingOutputs()
    reads: list[Iterable[int]] = []

    async def read_log(partitions: Iterable[int]) -> dict[int, DecisionLog]:
        partitions = list(partitions)
        reads.append(partitions)
        return {p: (logs or {}).get(p, DecisionLog()) for p in partitions}

    subscriptions = {
        course_key(SITE, "c1"): Subscription(("cmars",)),
        course_key(SITE, "c4"): Subscription(("cmars",), ("501",)),
    }
    pipeline = Pipeline(
        rules, MessageWriter(CODEC), outputs, read_log, {}, {}, subscriptions, clock, observer
    )
    return pipeline, outputs, reads


def read(record: dict) -> Decoded:
    """The record as the worker receives it from lms.learning-records."""
    return Decoded(encoded(record), "LearningRecord", record)


def encoded(record: dict) -> bytes:
    return CODEC.encode("LearningRecord", record)


async def test_eligible_record_is_routed_once_even_when_republished() -> None:
    pipeline, outputs, reads = make_pipeline(Clock("2026-11-20T12:00:00+00:00"))
    await pipeline.on_profile(0, KEY, profile("u1", "CA-ON-CPSO-12345"))
    record = learning_record("u1", "c1", "2026-10-01T10:00:00Z")
    for _ in range(2):
        await pipeline.on_learning_record(0, KEY, read(record))
    [(topic, key, value, partition)] = outputs.sent
    assert (topic, key, partition) == (outbox_topic("cmars"), KEY, 0)
    routed = CODEC.decode("RoutedRecord", value)
    assert routed["oci_id"]["canonical"] == "CA-ON-CPSO-12345"
    assert routed["record"]["record_id"] == record["record_id"]
    assert reads == [[0]], "the decision log is read once per partition"


async def test_a_restarted_worker_does_not_route_what_its_predecessor_wrote() -> None:
    record = learning_record("u1", "c1", "2026-10-01T10:00:00Z")
    log = DecisionLog(routed={("cmars", record["record_id"])})
    pipeline, outputs, _ = make_pipeline(Clock("2026-11-20T12:00:00+00:00"), {2: log})
    await pipeline.on_profile(2, KEY, profile("u1", "CA-ON-CPSO-12345"))
    await pipeline.on_learning_record(2, KEY, read(record))
    assert outputs.sent == []


async def test_release_tombstones_only_after_the_outbox_write_is_acknowledged() -> None:
    pipeline, outputs, _ = make_pipeline(Clock("2026-11-20T12:00:00+00:00"))
    record = learning_record("u1", "c1", "2026-10-01T10:00:00Z")
    await pipeline.on_learning_record(1, KEY, read(record))
    assert [s[0] for s in outputs.sent] == [PENDING]
    await pipeline.on_profile(1, KEY, profile("u1", "College of Midwives of Ontario | 0042"))
    assert [s[0] for s in outputs.sent] == [PENDING, outbox_topic("cmars"), PENDING]
    tombstone = outputs.sent[2]
    assert tombstone[1] == record["record_id"].encode() and tombstone[2] is None
    assert outputs.acknowledged_before[2] == 2, (
        "the outbox entry was flushed before the tombstone was sent"
    )
    assert pipeline.pending_count() == 0


async def test_course_completion_waits_for_its_required_activity_in_the_same_period() -> None:
    pipeline, outputs, _ = make_pipeline(Clock("2026-11-20T12:00:00+00:00"))
    await pipeline.on_profile(0, KEY, profile("u1", "CA-ON-CPSO-12345"))
    course = learning_record("u1", "c4", "2026-10-01T10:00:00Z")
    await pipeline.on_learning_record(0, KEY, read(course))
    assert [s[0] for s in outputs.sent] == [PENDING]
    # An activity completed in the previous period does not count.
    old = learning_record(
        "u1", "c4", "2026-03-01T10:00:00Z", source="activity_completion", cmid="501"
    )
    await pipeline.on_learning_record(0, KEY, read(old))
    assert pipeline.pending_count() == 1
    activity = learning_record(
        "u1", "c4", "2026-10-02T10:00:00Z", source="activity_completion", cmid="501"
    )
    await pipeline.on_learning_record(0, KEY, read(activity))
    routed = {
        CODEC.decode("RoutedRecord", s[2])["record_id"] for s in outputs.to(outbox_topic("cmars"))
    }
    assert routed == {course["record_id"], activity["record_id"]}
    assert pipeline.pending_count() == 0


@pytest.mark.parametrize(
    ("oci_id", "reason"),
    [(None, "no_oci_id"), ("CPSO-XYZ", "invalid_oci_id")],
)
async def test_held_records_become_ineligible_with_their_reason_when_the_period_closes(
    oci_id: str | None, reason: str
) -> None:
    clock = Clock("2027-03-31T12:00:00+00:00")
    pipeline, outputs, _ = make_pipeline(clock)
    if oci_id is not None:
        await pipeline.on_profile(3, KEY, profile("u1", oci_id))
    record = learning_record("u1", "c1", "2027-03-30T10:00:00Z")
    await pipeline.on_learning_record(3, KEY, read(record))
    assert await pipeline.close_periods([3]) == 0, "2026-27 has not closed yet"
    clock.now = datetime(2027, 4, 1, 4, 0, tzinfo=UTC)  # midnight in Toronto
    assert await pipeline.close_periods([3]) == 1
    [(_, key, value, partition)] = outputs.to(INELIGIBLE)
    ineligible = CODEC.decode("IneligibleRecord", value)
    assert (key, partition, ineligible["reason"], ineligible["period"]) == (
        record["record_id"].encode(),
        3,
        reason,
        "2026-27",
    )
    assert "2026-27 closed" in ineligible["detail"]
    assert outputs.to(PENDING)[-1][2] is None
    assert await pipeline.close_periods([3]) == 0


def test_spliced_messages_equal_a_full_encoding() -> None:
    writer = MessageWriter(CODEC)
    record = learning_record("u1", "c1", "2026-10-01T10:00:00Z")
    now = datetime(2026, 11, 20, tzinfo=UTC)
    route = Route("cmars", OciId.of("CA-ON-CPSO", "012345"), "2026-27")
    spliced, headers = writer.routed(route, read(record), now)
    full, _ = writer.routed(route, Decoded.of_record(record), now)
    assert spliced == full
    assert dict(headers)["lrx-record-id"] == record["record_id"].encode()
    reject = Reject("voided", "the LMS voided this record", None, "2026-27")
    assert (
        writer.ineligible(reject, read(record), now)[0]
        == writer.ineligible(reject, Decoded.of_record(record), now)[0]
    )
    assert CODEC.decode("RoutedRecord", spliced)["oci_id"]["licence"] == "012345"


# --- failures: infrastructure crashes the worker, bad data is dead-lettered


class FailingOutputs(RecordingOutputs):
    """Outputs whose writes fail, as when Kafka does not acknowledge them."""

    async def flush(self) -> None:
        if len(self.sent) > self.flushed:
            raise KafkaTimeoutError("no acknowledgement")


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None


@dataclass(eq=False)
class Event:
    message: Message
    value: Decoded | None


def record_event(record: dict, offset: int, *, key: bytes = KEY) -> Event:
    raw = encoded(record)
    name, decoded = CODEC.decode_any(raw)
    return Event(Message(LEARNING_RECORDS, 0, offset, key), Decoded(raw, name, decoded))


def profile_event(value: dict, offset: int) -> Event:
    raw = CODEC.encode("UserProfile", value)
    return Event(Message(USER_PROFILES, 0, offset, KEY), Decoded(raw, "UserProfile", value))


async def one_batch(*events: Event) -> AsyncIterator[list[Event]]:
    yield list(events)


@pytest.fixture
def pipeline_app(tmp_path: Path) -> Iterator[PipelineApp]:
    """The Faust app's event handling around an in-memory pipeline (nothing started)."""
    app = wiring.pipeline_app(Settings().replace(run_dir=tmp_path))
    pipeline, outputs, _ = make_pipeline(Clock("2026-11-20T12:00:00+00:00"))
    app.pipeline, app.outputs = pipeline, outputs
    app.assigned_partitions = lambda: {0}  # type: ignore[method-assign]
    app.subscriptions.ready.set()
    yield app


async def test_unacknowledged_outputs_crash_the_worker_and_ack_nothing(
    pipeline_app: PipelineApp,
) -> None:
    pipeline_app.outputs = FailingOutputs()
    record = learning_record("u1", "c1", "2026-10-01T10:00:00Z")
    acked: list[Event] = []

    async def ack(event: Event) -> None:
        acked.append(event)

    events = [profile_event(profile("u1", "CA-ON-CPSO-12345"), 0), record_event(record, 1)]
    await pipeline_app.route(one_batch(*events), ack)
    assert acked == [], "no event of a batch whose outputs failed is acked"
    assert pipeline_app.app.crashed, "the worker stops, to restart from its committed offsets"
    assert pipeline_app.pipeline.logs == {}, "no decision outlives the failed batch"
    assert [s[0] for s in pipeline_app.outputs.sent] == [outbox_topic("cmars")]
    assert not any(s[0] == PIPELINE_DEAD_LETTERS for s in pipeline_app.outputs.sent)


async def test_a_decision_log_that_cannot_be_read_crashes_instead_of_dead_lettering(
    pipeline_app: PipelineApp,
) -> None:
    async def unreachable(partitions: Iterable[int]) -> dict[int, DecisionLog]:
        raise KafkaConnectionError("broker down")

    pipeline_app.pipeline.read_decision_log = unreachable
    acked: list[Event] = []

    async def ack(event: Event) -> None:
        acked.append(event)

    record = learning_record("u1", "c1", "2026-10-01T10:00:00Z")
    await pipeline_app.route(one_batch(record_event(record, 0)), ack)
    assert (acked, pipeline_app.app.crashed) == ([], True)
    assert pipeline_app.outputs.sent == [], "an infrastructure failure is not a dead letter"


async def test_a_record_id_that_is_not_the_records_own_is_dead_lettered(
    pipeline_app: PipelineApp,
) -> None:
    honest = learning_record("u1", "c1", "2026-10-01T10:00:00Z")
    forged = {**honest, "record_id": str(uuid.uuid4())}
    acked: list[Event] = []

    async def ack(event: Event) -> None:
        acked.append(event)

    await pipeline_app.route(one_batch(record_event(forged, 7)), ack)
    [(topic, key, value, _)] = pipeline_app.outputs.sent
    dead = CODEC.decode("DeadLetter", value)
    assert (topic, key, dead["reason_code"], dead["source_offset"]) == (
        PIPELINE_DEAD_LETTERS,
        KEY,
        "wrong_record_id",
        7,
    )
    assert honest["record_id"] in dead["error_message"]
    assert len(acked) == 1 and not pipeline_app.app.crashed


async def test_content_the_rules_cannot_handle_is_dead_lettered_with_nothing_else_written(
    pipeline_app: PipelineApp,
) -> None:
    record = learning_record("u1", "c1", "2026-10-01T10:00:00Z")

    def broken_routed(*args: object) -> None:
        raise CodecError("invalid_record", "cannot encode this record", field="course")

    pipeline_app.pipeline.writer.routed = broken_routed  # type: ignore[method-assign]
    await pipeline_app.route(
        one_batch(profile_event(profile("u1", "CA-ON-CPSO-12345"), 0), record_event(record, 1)),
        lambda event: asyncio.sleep(0),
    )
    topics = [s[0] for s in pipeline_app.outputs.sent]
    assert topics == [PIPELINE_DEAD_LETTERS]
    assert not pipeline_app.app.crashed


def _decoded_as_the_worker_would(raw: bytes) -> Decoded:
    try:
        name, record = CODEC.decode_any(raw)
    except CodecError as error:
        return Decoded(raw, error=error)
    return Decoded(raw, name, record)


def _bad_inputs() -> list[tuple[str, str, bytes | None, bytes | None, str]]:
    """(id, topic, key, raw value, reason): input the worker must dead-letter, never drop."""
    record = learning_record("u1", "c1", "2026-10-01T10:00:00Z")
    record_bytes = CODEC.encode("LearningRecord", record)
    profile_bytes = CODEC.encode("UserProfile", profile("u1", "CA-ON-CPSO-12345"))
    other_user = f"{SITE}/u2".encode()
    return [
        ("not-avro", LEARNING_RECORDS, KEY, b"not avro at all", "bad_marker"),
        ("truncated", LEARNING_RECORDS, KEY, record_bytes[:12], "truncated"),
        ("profile-on-records", LEARNING_RECORDS, KEY, profile_bytes, "wrong_schema"),
        ("record-of-another-user", LEARNING_RECORDS, other_user, record_bytes, "wrong_key"),
        ("tombstone", LEARNING_RECORDS, KEY, None, "tombstone"),
        ("profile-without-key", USER_PROFILES, None, profile_bytes, "missing_key"),
        ("record-on-profiles", USER_PROFILES, KEY, record_bytes, "wrong_schema"),
        ("profile-of-another-user", USER_PROFILES, other_user, profile_bytes, "wrong_key"),
    ]


@pytest.mark.parametrize(
    ("topic", "key", "raw", "reason"),
    [case[1:] for case in _bad_inputs()],
    ids=[case[0] for case in _bad_inputs()],
)
async def test_bad_input_is_dead_lettered_once_with_its_exact_bytes_and_nothing_else_written(
    pipeline_app: PipelineApp, topic: str, key: bytes | None, raw: bytes | None, reason: str
) -> None:
    value = None if raw is None else _decoded_as_the_worker_would(raw)
    acked: list[Event] = []

    async def ack(event: Event) -> None:
        acked.append(event)

    await pipeline_app.route(one_batch(Event(Message(topic, 2, 17, key), value)), ack)

    [(dlq, dlq_key, letter_bytes, _)] = pipeline_app.outputs.sent
    letter = CODEC.decode("DeadLetter", letter_bytes)
    assert (dlq, dlq_key, letter["reason_code"]) == (PIPELINE_DEAD_LETTERS, key, reason)
    assert letter["original_value"] == (raw or b"") and letter["original_key"] == key
    assert (letter["source_topic"], letter["source_partition"], letter["source_offset"]) == (
        topic,
        2,
        17,
    )
    headers = dict(pipeline_app.outputs.headers[0])
    assert headers[HEADER_PREFIX + "reason.code"] == reason.encode()
    assert len(acked) == 1 and not pipeline_app.app.crashed
    assert pipeline_app.pipeline.logs.get(2, DecisionLog()).routed == set()


async def test_undecodable_input_is_dead_lettered_with_its_exact_bytes_and_connect_style_headers(
    pipeline_app: PipelineApp,
) -> None:
    raw = b"\xc3\x01" + b"\x00" * 8 + b"not the rest of a record"
    error = codec_error_of(raw)
    event = Event(Message(LEARNING_RECORDS, 3, 41, KEY), Decoded(raw, error=error))
    await pipeline_app.route(one_batch(event), lambda event: asyncio.sleep(0))

    [(topic, key, value, _)] = pipeline_app.outputs.sent
    letter = CODEC.decode("DeadLetter", value)
    assert (topic, key) == (PIPELINE_DEAD_LETTERS, KEY)
    assert letter["original_value"] == raw and letter["original_key"] == KEY
    assert (letter["source_topic"], letter["source_partition"], letter["source_offset"]) == (
        LEARNING_RECORDS,
        3,
        41,
    )
    assert letter["reason_code"] == error.kind == "unknown_fingerprint"
    headers = {k: v.decode() for k, v in pipeline_app.outputs.headers[0]}
    assert headers == {
        HEADER_PREFIX + "topic": LEARNING_RECORDS,
        HEADER_PREFIX + "partition": "3",
        HEADER_PREFIX + "offset": "41",
        HEADER_PREFIX + "connector.name": "lrx worker",
        HEADER_PREFIX + "stage": "streams.worker.pipeline",
        HEADER_PREFIX + "class.name": "PipelineApp",
        HEADER_PREFIX + "exception.class.name": "CodecError",
        HEADER_PREFIX + "exception.message": str(error),
        HEADER_PREFIX + "reason.code": "unknown_fingerprint",
        HEADER_PREFIX + "attempts": "1",
        HEADER_PREFIX + "timestamp": str(int(letter["last_attempt_at"].timestamp() * 1000)),
    }


async def test_an_error_that_is_not_about_the_data_crashes_the_worker_instead(
    pipeline_app: PipelineApp,
) -> None:
    record = learning_record("u1", "c1", "2026-10-01T10:00:00Z")

    def buggy_routed(*args: object) -> None:
        raise KeyError("a bug, not a bad record")

    pipeline_app.pipeline.writer.routed = buggy_routed  # type: ignore[method-assign]
    acked: list[Event] = []

    async def ack(event: Event) -> None:
        acked.append(event)

    await pipeline_app.route(
        one_batch(profile_event(profile("u1", "CA-ON-CPSO-12345"), 0), record_event(record, 1)), ack
    )
    assert pipeline_app.app.crashed and acked == []
    assert PIPELINE_DEAD_LETTERS not in [s[0] for s in pipeline_app.outputs.sent]


def test_every_codec_error_kind_is_a_dead_letter_reason() -> None:
    assert {str(reason) for reason in DeadLetterReason} >= CodecError.KINDS


def codec_error_of(raw: bytes) -> CodecError:
    with pytest.raises(CodecError) as caught:
        CODEC.decode_any(raw)
    return caught.value


async def test_a_failed_sweep_does_not_surface_in_the_next_batch() -> None:
    pipeline, outputs, _ = make_pipeline(Clock("2027-04-01T12:00:00+00:00"))
    held = learning_record("u1", "c1", "2027-03-30T10:00:00Z")
    reads: list[list[int]] = []

    async def read_held(partitions: Iterable[int]) -> dict[int, DecisionLog]:
        reads.append(list(partitions))
        decisions = DecisionLog()
        decisions.hold(KEY, read(held))
        return {p: decisions for p in partitions}

    pipeline.read_decision_log = read_held
    with pytest.raises(KafkaTimeoutError):
        async with pipeline.batch(FailingOutputs()):
            await pipeline.close_periods([0])
    assert pipeline.logs == {}, "the sweep's decisions are dropped with it"
    async with pipeline.batch(outputs):
        await pipeline.close_periods([0])
    assert reads == [[0], [0]], "the decision log is read back after the failed sweep"
    [(_, _, value, _)] = outputs.to(INELIGIBLE)
    assert CODEC.decode("IneligibleRecord", value)["reason"] == "no_oci_id"
    assert outputs.to(PENDING)[-1][2] is None, "and the held record is tombstoned"


# --- the decision log read back


def output(topic: str, key: bytes | None, value: bytes | None, headers=(), offset: int = 0):
    return SimpleNamespace(
        topic=topic, partition=0, offset=offset, key=key, value=value, headers=list(headers)
    )


def test_an_undecodable_output_counts_as_its_record_decided() -> None:
    record = learning_record("u1", "c1", "2026-10-01T10:00:00Z")
    record_id = record["record_id"]
    decisions = DecisionLog()
    apply_output(decisions, output(INELIGIBLE, record_id.encode(), b"garbage"), CODEC)
    assert decisions.unreadable == {record_id}


async def test_a_record_with_an_unreadable_output_is_not_decided_again() -> None:
    record = learning_record("u1", "c1", "2026-10-01T10:00:00Z")
    logs = {0: DecisionLog(unreadable={record["record_id"]})}
    pipeline, outputs, _ = make_pipeline(Clock("2026-11-20T12:00:00+00:00"), logs)
    await pipeline.on_profile(0, KEY, profile("u1", "CA-ON-CPSO-12345"))
    await pipeline.on_learning_record(0, KEY, read(record))
    assert outputs.sent == []


def test_an_undecodable_outbox_entry_naming_no_record_stops_the_read() -> None:
    topic = outbox_topic("cmars")
    with pytest.raises(DecisionLogError, match=rf"{topic}\[0\]@5 .*names no record id"):
        apply_output(DecisionLog(), output(topic, KEY, b"garbage", offset=5), CODEC)


async def test_the_worker_metrics_count_every_event_and_each_decision(tmp_path: Path) -> None:
    metrics = WorkerMetrics()
    app = wiring.pipeline_app(Settings().replace(run_dir=tmp_path), observer=metrics)
    app.pipeline, app.outputs, _ = make_pipeline(
        Clock("2026-11-20T12:00:00+00:00"), observer=metrics
    )
    app.assigned_partitions = lambda: {0}  # type: ignore[method-assign]
    app.subscriptions.ready.set()
    no_oci = f"{SITE}/u9".encode()
    events = [
        profile_event(profile("u1", "CA-ON-CPSO-12345"), 0),
        record_event(learning_record("u1", "c1", "2026-10-01T10:00:00Z"), 1),  # routed
        record_event(learning_record("u1", "c2", "2026-10-01T10:00:00Z"), 2),  # no recipient
        record_event(learning_record("u9", "c1", "2026-10-01T10:00:00Z"), 3, key=no_oci),
        Event(Message(LEARNING_RECORDS, 0, 4, KEY), _decoded_as_the_worker_would(b"junk")),
    ]
    await app.route(one_batch(*events), lambda event: asyncio.sleep(0))

    sample = metrics.metrics.sample
    assert sample("lrx_worker_events_total") == 5
    decisions = "lrx_worker_decisions_total"
    assert sample(decisions, {"outcome": "routed", "reason": ""}) == 1
    assert sample(decisions, {"outcome": "ineligible", "reason": "no_recipient"}) == 1
    assert sample(decisions, {"outcome": "held", "reason": "no_oci_id"}) == 1
    assert sample(decisions, {"outcome": "dead_lettered", "reason": "bad_marker"}) == 1
    assert sample("lrx_worker_pending_records") == 1
