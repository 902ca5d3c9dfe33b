"""The read model of a record's fate (streams/read_model), from messages the way Kafka holds them.

The messages are built by the worker's own MessageWriter and the real codec, so
these tests fail if the read model and the pipeline ever disagree on a topic's
contents. No broker: a message is a plain value with the fields aiokafka gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.codec import Codec
from schemas.topics import (
    COURSE_RECIPIENTS,
    DELIVERY_RECEIPTS,
    INELIGIBLE,
    LEARNING_RECORDS,
    PENDING,
    PIPELINE_DEAD_LETTERS,
    USER_PROFILES,
    course_key,
    dlq_topic,
    outbox_topic,
    user_key,
)
from streams.read_model.record_fate import Fate, Outcome, outcomes_by_record, why_held
from streams.read_model.user_trace import trace_of_user
from streams.rules.activity_completions import completions_of, with_completion
from streams.rules.colleges import CollegeRegistry
from streams.rules.eligibility import ProfileState
from streams.rules.oci_id import parse_oci_id
from streams.rules.recipients import RecipientDirectory
from streams.rules.reporting_period import ReportingCalendar
from streams.rules.routing import Reject, Route, RoutingRules
from streams.worker.messages import Decoded, MessageWriter
from tests.support.records import SITE, course_recipients, learning_record, profile

CODEC = Codec.default()
WRITER = MessageWriter(CODEC)
NOW = datetime(2026, 10, 5, 12, tzinfo=UTC)
RULES = RoutingRules(
    CollegeRegistry.load(),
    RecipientDirectory.from_settings(("cmars", "tahsn"), {}),
    ReportingCalendar(),
)
OCI = "CA-ON-CPSO-12345"


@dataclass
class Message:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    partition: int = 0
    offset: int = 0


class Topics(dict):
    """Topic -> messages in order, as `read_topic` returns them."""

    def add(self, topic: str, key: bytes | None, value: bytes | None, headers=()) -> None:
        messages = self.setdefault(topic, [])
        messages.append(Message(topic, key, value, list(headers), 0, len(messages)))


def routed(topics: Topics, record: dict, recipient: str = "cmars") -> None:
    route = Route(recipient, parse_oci_id(OCI, RULES.colleges), "2026-2027")
    value, headers = WRITER.routed(route, Decoded.of_record(record), NOW)
    topics.add(outbox_topic(recipient), user_key(SITE, record["user_id"]), value, headers)


def receipt(topics: Topics, record: dict, recipient: str = "cmars") -> None:
    value = {
        "record_id": record["record_id"],
        "recipient": recipient,
        "batch_id": "0b6b6f43-0d3e-5f43-8d49-3f1f6ab9a001",
        "delivered_at": NOW,
        "outcome": "accepted",
        "oci_id": OCI,
        "message": None,
    }
    topics.add(
        DELIVERY_RECEIPTS, record["record_id"].encode(), CODEC.encode("DeliveryReceipt", value)
    )


def dead_letter(
    topics: Topics, record_id: str | None, topic: str = "", key: bytes | None = None, **extra
) -> None:
    recipient = "cmars"
    value = {
        "recipient": recipient,
        "record_id": record_id,
        "reason_code": "WS401",
        "error_message": "no practitioner has this OCI ID",
        "attempts": 1,
        "first_attempt_at": NOW,
        "last_attempt_at": NOW,
        "source_topic": outbox_topic(recipient),
        "source_partition": 0,
        "source_offset": 0,
        "original_key": None,
        "original_value": b"",
        "stage": f"sink.{recipient}",
    } | extra
    topics.add(topic or dlq_topic(recipient), key, CODEC.encode("DeadLetter", value))


def test_each_fate_is_read_from_the_topic_that_records_it():
    delivered, waiting, dead, rejected, held, released = (
        learning_record("55", "c1", f"2026-10-0{day}T09:00:00+00:00") for day in range(1, 7)
    )
    topics = Topics()
    for record in (delivered, waiting, dead):
        routed(topics, record)
    receipt(topics, delivered)
    dead_letter(topics, dead["record_id"])
    value, headers = WRITER.ineligible(
        Reject("not_complete", "the attempt is incomplete"), Decoded.of_record(rejected), NOW
    )
    topics.add(INELIGIBLE, rejected["record_id"].encode(), value, headers)
    for record in (held, released):
        topics.add(PENDING, record["record_id"].encode(), WRITER.pending(Decoded.of_record(record)))
    topics.add(PENDING, released["record_id"].encode(), None)  # released: a tombstone

    fates = outcomes_by_record(topics, ["cmars"], CODEC)

    assert [o.fate for o in fates[delivered["record_id"]]] == [Fate.DELIVERED]
    assert fates[delivered["record_id"]][0].receipt["oci_id"] == OCI
    assert fates[waiting["record_id"]] == [Outcome(Fate.ROUTED, "cmars")]
    assert fates[dead["record_id"]] == [
        Outcome(Fate.DEAD_LETTERED, "cmars", "WS401", "no practitioner has this OCI ID", attempts=1)
    ]
    assert fates[rejected["record_id"]] == [
        Outcome(Fate.INELIGIBLE, "", "not_complete", "the attempt is incomplete")
    ]
    assert fates[held["record_id"]] == [Outcome(Fate.PENDING)]
    assert released["record_id"] not in fates  # released and not yet decided again


def test_a_record_routed_to_two_recipients_has_an_outcome_for_each():
    record = learning_record("55", "c1", "2026-10-01T09:00:00+00:00")
    topics = Topics()
    routed(topics, record, "cmars")
    routed(topics, record, "tahsn")
    receipt(topics, record, "tahsn")
    fates = outcomes_by_record(topics, ["cmars", "tahsn"], CODEC)
    assert {(o.recipient, o.fate) for o in fates[record["record_id"]]} == {
        ("cmars", Fate.ROUTED),
        ("tahsn", Fate.DELIVERED),
    }


def test_only_the_asked_records_are_kept_and_unreadable_outputs_do_not_stop_the_read():
    mine = learning_record("55", "c1", "2026-10-01T09:00:00+00:00")
    other = learning_record("56", "c1", "2026-10-01T09:00:00+00:00")
    topics = Topics()
    routed(topics, mine)
    routed(topics, other)
    topics.add(outbox_topic("cmars"), b"x", b"\x00not avro")  # names no record at all
    fates = outcomes_by_record(topics, ["cmars"], CODEC, {mine["record_id"]})
    assert list(fates) == [mine["record_id"]]


def test_a_held_record_says_why_as_the_worker_would_decide_it_now():
    record = learning_record("55", "c4", "2026-10-01T09:00:00+00:00")
    no_oci = ProfileState.of_profile(profile("55", None), RULES.colleges)
    plain = course_recipients("c4", ["cmars"])
    assert why_held(record, [record], no_oci, plain, RULES, NOW).startswith("no_oci_id: ")

    subscription = course_recipients("c4", ["cmars"], ["501"])

    with_oci = ProfileState.of_profile(profile("55", OCI), RULES.colleges)
    why = why_held(record, [record], with_oci, subscription, RULES, NOW)
    assert why.startswith("required_activity_missing: ")
    activity = learning_record(
        "55", "c4", "2026-10-01T08:00:00+00:00", source="activity_completion", cmid="501"
    )
    # The activity is complete now: the hold is over, and the worker re-checks it.
    assert why_held(record, [record, activity], with_oci, subscription, RULES, NOW) == (
        "re-check due"
    )


def test_completions_count_each_activity_time_once_in_order():
    first = learning_record(
        "55", "c4", "2026-10-02T08:00:00+00:00", source="activity_completion", cmid="501"
    )
    earlier = learning_record(
        "55", "c4", "2026-10-01T08:00:00+00:00", source="activity_completion", cmid="501"
    )
    course = learning_record("55", "c4", "2026-10-03T08:00:00+00:00")
    failed = learning_record(
        "55", "c4", "2026-10-03T08:00:00+00:00", source="activity_completion", cmid="502",
        state="complete_fail",
    )  # fmt: skip
    ms = lambda r: int(r["completed_at"].timestamp() * 1000)  # noqa: E731
    assert completions_of([first, earlier, first, course, failed]) == {
        "501": [ms(earlier), ms(first)]
    }
    assert with_completion({"501": [ms(first)]}, first) is None  # already counted
    assert with_completion(None, course) is None
    assert completions_of([]) == {}


def test_a_user_trace_holds_profile_subscriptions_outcomes_and_dead_lettered_input():
    delivered = learning_record("55", "c1", "2026-10-01T09:00:00+00:00")
    held = learning_record("55", "c2", "2026-10-02T09:00:00+00:00")
    unsubscribed = learning_record("55", "c3", "2026-10-03T09:00:00+00:00")
    someone_else = learning_record("56", "c1", "2026-10-01T09:00:00+00:00")
    key = user_key(SITE, "55")
    topics = Topics()
    for record in (delivered, held, unsubscribed, someone_else):
        key_of = user_key(SITE, record["user_id"])
        topics.add(LEARNING_RECORDS, key_of, CODEC.encode("LearningRecord", record))
    topics.add(USER_PROFILES, key, CODEC.encode("UserProfile", profile("55", None)))
    topics.add(USER_PROFILES, key, CODEC.encode("UserProfile", profile("55", "CPSO 12AB")))
    for course in ("c1", "c2", "c3"):
        value = CODEC.encode("CourseRecipients", course_recipients(course, ["cmars"]))
        topics.add(COURSE_RECIPIENTS, course_key(SITE, course), value)
    topics.add(COURSE_RECIPIENTS, course_key(SITE, "c3"), None)  # unsubscribed since
    routed(topics, delivered)
    receipt(topics, delivered)
    topics.add(PENDING, held["record_id"].encode(), WRITER.pending(Decoded.of_record(held)))
    dead_letter(
        topics,
        None,
        PIPELINE_DEAD_LETTERS,
        key,
        source_topic=LEARNING_RECORDS,
        reason_code="undecodable",
    )
    topics.setdefault(INELIGIBLE, [])

    trace = trace_of_user(topics, SITE, "55", None, ["cmars"], RULES, NOW, CODEC)

    assert trace.profile["oci_id"] == "CPSO 12AB"  # the latest profile
    assert trace.profile_state.oci_id is None and trace.profile_state.oci_id_problem
    assert trace.subscriptions["c3"] is None
    assert trace.subscriptions["c1"]["recipients"] == ["cmars"]
    by_id = {t.record["record_id"]: t for t in trace.records}
    assert set(by_id) == {delivered["record_id"], held["record_id"], unsubscribed["record_id"]}
    assert [o.fate for o in by_id[delivered["record_id"]].outcomes] == [Fate.DELIVERED]
    assert by_id[delivered["record_id"]].held_because is None
    assert by_id[held["record_id"]].held_because.startswith("invalid_oci_id: ")
    assert by_id[unsubscribed["record_id"]].outcomes == []  # not decided yet
    assert [letter["reason_code"] for letter in trace.input_dead_letters] == ["undecodable"]
