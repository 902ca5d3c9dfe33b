"""Unit tests of the pipeline's handling, with in-memory outputs and tables (no Kafka)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from deploy.settings import Settings
from schemas.topics import INELIGIBLE, PENDING, course_key, outbox_topic
from streams.colleges import CollegeRegistry
from streams.decision_log import DecisionLog
from streams.messages import MessageWriter
from streams.oci_id import OciId
from streams.pipeline import Pipeline
from streams.recipients import RecipientDirectory
from streams.reporting_period import ReportingCalendar
from streams.routing import Reject, Route, RoutingRules, Subscription
from tests.test_pipeline_support import CODEC, SITE, learning_record, profile

KEY = f"{SITE}/u1".encode()


class RecordingOutputs:
    """Outputs that remember what was sent, and which sends a flush acknowledged."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int]] = []
        self.flushed = 0  # how many of `sent` were acknowledged by a flush
        self.acknowledged_before: list[int] = []  # per sent message: how many were, then

    async def send(self, topic, key, value, partition, headers=None) -> None:
        self.acknowledged_before.append(self.flushed)
        self.sent.append((topic, key, value, partition))

    async def flush(self) -> None:
        self.flushed = len(self.sent)

    def to(self, topic: str) -> list[tuple[str, bytes | None, bytes | None, int]]:
        return [s for s in self.sent if s[0] == topic]


class Clock:
    def __init__(self, now: str) -> None:
        self.now = datetime.fromisoformat(now)

    def __call__(self) -> datetime:
        return self.now


def make_pipeline(
    clock: Clock, logs: dict[int, DecisionLog] | None = None
) -> tuple[Pipeline, RecordingOutputs, list[Iterable[int]]]:
    settings = Settings.from_env()
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
        rules, MessageWriter(CODEC), outputs, read_log, {}, {}, subscriptions, clock
    )
    return pipeline, outputs, reads


def encoded(record: dict) -> bytes:
    return CODEC.encode("LearningRecord", record)


async def test_eligible_record_is_routed_once_even_when_republished() -> None:
    pipeline, outputs, reads = make_pipeline(Clock("2026-11-20T12:00:00+00:00"))
    await pipeline.on_profile(0, KEY, profile("u1", "CA-ON-CPSO-12345"))
    record = learning_record("u1", "c1", "2026-10-01T10:00:00Z")
    for _ in range(2):
        await pipeline.on_learning_record(0, KEY, record, encoded(record))
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
    await pipeline.on_learning_record(2, KEY, record, encoded(record))
    assert outputs.sent == []


async def test_release_tombstones_only_after_the_outbox_write_is_acknowledged() -> None:
    pipeline, outputs, _ = make_pipeline(Clock("2026-11-20T12:00:00+00:00"))
    record = learning_record("u1", "c1", "2026-10-01T10:00:00Z")
    await pipeline.on_learning_record(1, KEY, record, encoded(record))
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
    await pipeline.on_learning_record(0, KEY, course, encoded(course))
    assert [s[0] for s in outputs.sent] == [PENDING]
    # An activity completed in the previous period does not count.
    old = learning_record(
        "u1", "c4", "2026-03-01T10:00:00Z", source="activity_completion", cmid="501"
    )
    await pipeline.on_learning_record(0, KEY, old, encoded(old))
    assert pipeline.pending_count() == 1
    activity = learning_record(
        "u1", "c4", "2026-10-02T10:00:00Z", source="activity_completion", cmid="501"
    )
    await pipeline.on_learning_record(0, KEY, activity, encoded(activity))
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
    await pipeline.on_learning_record(3, KEY, record, encoded(record))
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
    spliced, headers = writer.routed(route, record, encoded(record), now)
    full, _ = writer.routed(route, record, None, now)
    assert spliced == full
    assert dict(headers)["lrx-record-id"] == record["record_id"].encode()
    reject = Reject("voided", "the LMS voided this record", None, "2026-27")
    assert (
        writer.ineligible(reject, record, encoded(record), now)[0]
        == writer.ineligible(reject, record, None, now)[0]
    )
    assert CODEC.decode("RoutedRecord", spliced)["oci_id"]["licence"] == "012345"
