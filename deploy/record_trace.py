"""`lrx trace`: what happened to a user's learning records, and why.

This answers the guide's FAQ, "the physician says they completed the course but
CMaRS says they haven't", from what Kafka holds: the records the LMS sent, the
user's profile, the course's subscription, and every outcome the pipeline and
the sink recorded (pending, ineligible, outbox, receipts, dead letters). A held
record's reason is worked out again with the same pure rules the worker uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord

from deploy.settings import Settings
from schemas.codec import Codec, CodecError
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
from streams.kafka.topic_reader import read_topic
from streams.rules.colleges import CollegeRegistry
from streams.rules.eligibility import ProfileState, completed_activity
from streams.rules.recipients import RecipientDirectory
from streams.rules.reporting_period import ReportingCalendar
from streams.rules.routing import Hold, RoutingRules, Subscription

__all__ = ["RecordTrace", "UserTrace", "trace_user"]


@dataclass
class RecordTrace:
    record: dict[str, Any]
    period: str
    outcomes: list[str] = field(default_factory=list)  # one line per recipient or state


@dataclass
class UserTrace:
    site: str
    user_id: str
    profile: dict[str, Any] | None
    profile_state: ProfileState | None
    subscriptions: dict[str, dict[str, Any] | None]  # course id -> CourseRecipients
    records: list[RecordTrace]
    unreadable: list[str] = field(default_factory=list)  # dead-lettered input of this user

    def lines(self) -> list[str]:
        """A report an LMS admin can read."""
        head = f"user {self.site}/{self.user_id}"
        if self.profile is None:
            out = [f"{head}: no profile received from the LMS (so no OCI ID)"]
        else:
            out = [f"{head} ({self.profile['username']}): OCI ID {self._oci_text()}"]
        out += [f"  {line}" for line in self.unreadable]
        if not self.records:
            out.append("  no learning record received for this user"
                       + (" and course" if len(self.subscriptions) == 1 else ""))  # fmt: skip
        for course_id, subscription in sorted(self.subscriptions.items()):
            out.append(f"course {course_id}: {_subscription_text(subscription)}")
            course_records = [r for r in self.records if r.record["course"]["id"] == course_id]
            if not course_records:
                out.append("  no learning record: the LMS sent no completion for this course")
            for trace in course_records:
                record = trace.record
                what = record["source"]
                if record.get("activity"):
                    what += f" of activity {record['activity']['cmid']}"
                when = record["completed_at"].strftime("%Y-%m-%d %H:%M UTC")
                out.append(
                    f"  record {record['record_id']}: {what}, {record['completion_state']}, "
                    f"completed {when} (period {trace.period})"
                )
                out += [f"    {line}" for line in trace.outcomes]
        return out

    def _oci_text(self) -> str:
        raw = self.profile.get("oci_id") if self.profile else None
        state = self.profile_state
        if state is not None and state.oci_id is not None:
            return f"{state.oci_id.canonical} (profile field: {raw!r})"
        if not raw:
            return "none (the profile field ociid is empty)"
        return f"INVALID {raw!r}: {state.oci_id_problem if state else ''}"


async def trace_user(
    settings: Settings, site: str, user_id: str, course_id: str | None = None
) -> UserTrace:
    """Collect everything Kafka knows about one user's records (of one course, if given)."""
    codec = Codec.default()
    key = user_key(site, user_id)
    recipients = settings.recipients
    topics = [LEARNING_RECORDS, USER_PROFILES, COURSE_RECIPIENTS, PENDING, INELIGIBLE]
    topics += [
        PIPELINE_DEAD_LETTERS,
        DELIVERY_RECEIPTS,
        *map(outbox_topic, recipients),
        *map(dlq_topic, recipients),
    ]
    prefixes = {LEARNING_RECORDS: key, USER_PROFILES: key, PIPELINE_DEAD_LETTERS: key}
    prefixes[COURSE_RECIPIENTS] = course_key(site, "")
    kafka, timeout = settings.kafka_connection(), settings.admin_kafka_timeout
    prefixes |= {outbox_topic(r): key for r in recipients}
    found = await asyncio.gather(
        *(read_topic(kafka, t, timeout=timeout, key_prefix=prefixes.get(t, b"")) for t in topics)
    )
    by_topic = dict(zip(topics, found, strict=True))

    def values(topic: str, exact_key: bytes | None = None) -> list[dict[str, Any]]:
        decoded = []
        for message in by_topic[topic]:
            if message.value is None or (exact_key is not None and message.key != exact_key):
                continue
            try:
                decoded.append(codec.decode_any(message.value)[1])
            except CodecError:
                continue  # the worker dead-letters undecodable input; nothing to trace here
        return decoded

    records: dict[str, dict[str, Any]] = {}
    for record in values(LEARNING_RECORDS, key):
        if course_id is None or record["course"]["id"] == course_id:
            records.setdefault(record["record_id"], record)  # republished: same record
    profiles = values(USER_PROFILES, key)
    profile = profiles[-1] if profiles else None
    colleges = CollegeRegistry.load(settings.colleges_file)
    state = ProfileState.of_profile(profile, colleges) if profile else None

    subscriptions: dict[str, dict[str, Any] | None] = {}
    course_prefix = len(course_key(site, ""))
    for message in by_topic[COURSE_RECIPIENTS]:  # in order, so a tombstone unsubscribes
        course = message.key[course_prefix:].decode()
        value = None if message.value is None else codec.decode_any(message.value)[1]
        subscriptions[course] = value
    courses = {course_id} if course_id else {r["course"]["id"] for r in records.values()}
    subscriptions = {c: subscriptions.get(c) for c in courses}

    rules = RoutingRules(
        colleges=colleges,
        directory=RecipientDirectory.from_settings(recipients, settings.recipient_aliases),
        calendar=ReportingCalendar.parse(settings.period_start, settings.period_timezone),
    )
    outcomes, held_ids = _outcomes_by_record(values, by_topic[PENDING], recipients, set(records))
    completions = _activity_completions(values(LEARNING_RECORDS, key))
    traces = []
    now = datetime.now(UTC)
    for record_id, record in sorted(records.items(), key=lambda r: r[1]["completed_at"]):
        period = rules.calendar.period_of(record["completed_at"]).label
        lines = outcomes.get(record_id, [])
        if record_id in held_ids:
            subscription = _subscription(subscriptions.get(record["course"]["id"]), rules)
            why = rules.decide(record, state, subscription, completions, now)
            held = [o for o in why if isinstance(o, Hold)]
            reason = f"{held[0].reason}: {held[0].detail}" if held else "re-check due"
            lines = [f"PENDING ({reason}); it is sent as soon as that is fixed", *lines]
        if not lines:
            lines = ["not decided yet: the worker has not reached it (or is not running)"]
        traces.append(RecordTrace(record, period, lines))
    trace = UserTrace(site, user_id, profile, state, subscriptions, traces)
    trace.unreadable = _unreadable(by_topic, key, codec)
    return trace


def _unreadable(by_topic: dict[str, list[ConsumerRecord]], key: bytes, codec: Codec) -> list[str]:
    """What the worker dead-lettered for this user, and input that does not decode at all."""
    found = []
    for message in by_topic[PIPELINE_DEAD_LETTERS]:
        if message.key == key and message.value is not None:
            letter = codec.decode_any(message.value)[1]
            found.append(
                f"the worker dead-lettered input from {letter['source_topic']}"
                f"[{letter['source_partition']}]@{letter['source_offset']}: "
                f"{letter['reason_code']}: {letter['error_message']}"
            )
    return found


def held_record_ids(pending: list[ConsumerRecord]) -> set[str]:
    """Record ids whose latest lrx.pending message is a hold, not a release tombstone."""
    held: set[str] = set()
    for message in pending:  # one record's hold and release share a partition, in order
        record_id = message.key.decode()
        if message.value is None:
            held.discard(record_id)
        else:
            held.add(record_id)
    return held


def _outcomes_by_record(
    values: Callable[[str], list[dict[str, Any]]],
    pending: list[ConsumerRecord],
    recipients: tuple[str, ...],
    record_ids: set[str],
) -> tuple[dict[str, list[str]], set[str]]:
    """Outcome lines per record id, and the ids still held in lrx.pending."""
    outcomes: dict[str, list[str]] = {}

    def add(record_id: str, line: str) -> None:
        if record_id in record_ids:
            outcomes.setdefault(record_id, []).append(line)

    held = held_record_ids(pending) & record_ids
    for value in values(INELIGIBLE):
        to = f" for {value['recipient']}" if value.get("recipient") else ""
        add(value["record_id"], f"INELIGIBLE{to}: {value['reason']} ({value['detail']})")
    receipts = {(r["recipient"], r["record_id"]): r for r in values(DELIVERY_RECEIPTS)}
    letters = {}
    for recipient in recipients:
        for letter in values(dlq_topic(recipient)):
            if letter.get("record_id"):
                letters[(recipient, letter["record_id"])] = letter
        for routed in values(outbox_topic(recipient)):
            record_id = routed["record_id"]
            receipt = receipts.get((recipient, record_id))
            letter = letters.get((recipient, record_id))
            if receipt is not None:
                at = receipt["delivered_at"].strftime("%Y-%m-%d %H:%M:%S UTC")
                add(record_id, f"{recipient}: DELIVERED {at} in batch {receipt['batch_id']} "
                               f"({receipt['outcome']}, as {receipt['oci_id']})")  # fmt: skip
            elif letter is not None:
                reason = f"{letter['reason_code']}: {letter['error_message']}"
                add(record_id, f"{recipient}: DEAD-LETTERED {reason} ({letter['attempts']} tries)")
            else:
                add(record_id, f"{recipient}: routed, delivery pending (waiting for the sink)")
    return outcomes, held


def _activity_completions(records: list[dict[str, Any]]) -> dict[str, list[int]]:
    """cmid -> completion times (epoch ms), as the worker's completions table holds them."""
    completions: dict[str, list[int]] = {}
    for record in records:
        cmid = completed_activity(record)
        if cmid is not None:
            when = int(record["completed_at"].timestamp() * 1000)
            completions.setdefault(cmid, []).append(when)
    return completions


def _subscription(value: dict[str, Any] | None, rules: RoutingRules) -> Subscription:
    if value is None:
        return Subscription()
    return Subscription.of_course_recipients(value, rules.directory)


def _subscription_text(value: dict[str, Any] | None) -> str:
    if value is None:
        return "NOT SUBSCRIBED: no recipient was ever added on its Learning record exchange page"
    names = ", ".join(value["recipients"]) or "NO RECIPIENT (all removed)"
    required = ", ".join(value["required_activities"]) or "none"
    return f"recipients {names}; required activities {required}"
