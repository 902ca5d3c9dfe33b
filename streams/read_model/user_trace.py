"""Everything Kafka knows about one user's learning records, for the FAQ's "why not?".

The LMS admin's question is about a person: the physician says they completed
the course and CMaRS says they have not. The answer needs the user's profile
(is there an OCI ID, is it valid), each course's subscription (recipients,
required activities) and every record's outcomes (`record_fate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.codec import Codec
from schemas.topics import (
    COURSE_RECIPIENTS,
    LEARNING_RECORDS,
    PIPELINE_DEAD_LETTERS,
    USER_PROFILES,
    course_key,
    user_key,
)
from streams.read_model.record_fate import (
    Fate,
    Outcome,
    TopicContents,
    decoded_values,
    outcomes_by_record,
    why_held,
)
from streams.rules.eligibility import ProfileState
from streams.rules.routing import RoutingRules

__all__ = ["RecordTrace", "UserTrace", "trace_of_user"]


@dataclass
class RecordTrace:
    record: dict[str, Any]
    period: str
    outcomes: list[Outcome] = field(default_factory=list)  # none: not decided yet
    held_because: str | None = None  # when pending: the hold, decided again now


@dataclass
class UserTrace:
    site: str
    user_id: str
    profile: dict[str, Any] | None
    profile_state: ProfileState | None
    subscriptions: dict[str, dict[str, Any] | None]  # course id -> CourseRecipients
    records: list[RecordTrace]
    input_dead_letters: list[dict[str, Any]] = field(default_factory=list)  # DeadLetter values


def trace_of_user(
    contents: TopicContents,
    site: str,
    user_id: str,
    course_id: str | None,
    recipients: list[str] | tuple[str, ...],
    rules: RoutingRules,
    now: datetime,
    codec: Codec,
) -> UserTrace:
    """The trace of one user from what `record_fate.read_user_topics` read."""
    key = user_key(site, user_id)
    learning_records = decoded_values(contents[LEARNING_RECORDS], codec, key)
    records: dict[str, dict[str, Any]] = {}
    for record in learning_records:
        if course_id is None or record["course"]["id"] == course_id:
            records.setdefault(record["record_id"], record)  # republished: same record
    profiles = decoded_values(contents[USER_PROFILES], codec, key)
    profile = profiles[-1] if profiles else None
    state = ProfileState.of_profile(profile, rules.colleges) if profile else None

    subscriptions: dict[str, dict[str, Any] | None] = {}
    course_prefix = len(course_key(site, ""))
    for message in contents[COURSE_RECIPIENTS]:  # in order, so a tombstone unsubscribes
        course = message.key[course_prefix:].decode()
        value = None if message.value is None else codec.decode_any(message.value)[1]
        subscriptions[course] = value
    courses = {course_id} if course_id else {r["course"]["id"] for r in records.values()}
    subscriptions = {c: subscriptions.get(c) for c in courses}

    outcomes = outcomes_by_record(contents, recipients, codec, set(records))
    traces = []
    for record_id, record in sorted(records.items(), key=lambda r: r[1]["completed_at"]):
        trace = RecordTrace(
            record,
            rules.calendar.period_of(record["completed_at"]).label,
            outcomes.get(record_id, []),
        )
        if any(o.fate is Fate.PENDING for o in trace.outcomes):
            subscription = subscriptions.get(record["course"]["id"])
            trace.held_because = why_held(record, learning_records, state, subscription, rules, now)
        traces.append(trace)
    letters = decoded_values(contents[PIPELINE_DEAD_LETTERS], codec, key)
    return UserTrace(site, user_id, profile, state, subscriptions, traces, letters)
