"""`lrx trace`'s report: a user's trace (streams/read_model) as text an LMS admin can read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from deploy.settings import Settings
from deploy.wiring import kafka_connection, routing_rules
from schemas.codec import Codec
from streams.read_model.record_fate import Fate, Outcome, read_user_topics
from streams.read_model.user_trace import RecordTrace, UserTrace, trace_of_user

__all__ = ["trace_user", "trace_lines", "record_lines"]


async def trace_user(
    settings: Settings, site: str, user_id: str, course_id: str | None = None
) -> UserTrace:
    """Read what Kafka holds of one user's records (of one course, if given)."""
    recipients = settings.recipients
    contents = await read_user_topics(
        kafka_connection(settings), settings.admin_kafka_timeout, site, user_id, recipients
    )
    return trace_of_user(
        contents,
        site,
        user_id,
        course_id,
        recipients,
        routing_rules(settings),
        datetime.now(UTC),
        Codec.default(),
    )


def trace_lines(trace: UserTrace) -> list[str]:
    """The report, one line each."""
    head = f"user {trace.site}/{trace.user_id}"
    if trace.profile is None:
        out = [f"{head}: no profile received from the LMS (so no OCI ID)"]
    else:
        out = [f"{head} ({trace.profile['username']}): OCI ID {_oci_text(trace)}"]
    out += [f"  {_input_dead_letter_text(letter)}" for letter in trace.input_dead_letters]
    if not trace.records:
        out.append("  no learning record received for this user"
                   + (" and course" if len(trace.subscriptions) == 1 else ""))  # fmt: skip
    for course_id, subscription in sorted(trace.subscriptions.items()):
        out.append(f"course {course_id}: {_subscription_text(subscription)}")
        course_records = [r for r in trace.records if r.record["course"]["id"] == course_id]
        if not course_records:
            out.append("  no learning record: the LMS sent no completion for this course")
        for record_trace in course_records:
            record = record_trace.record
            what = record["source"]
            if record.get("activity"):
                what += f" of activity {record['activity']['cmid']}"
            when = record["completed_at"].strftime("%Y-%m-%d %H:%M UTC")
            out.append(
                f"  record {record['record_id']}: {what}, {record['completion_state']}, "
                f"completed {when} (period {record_trace.period})"
            )
            out += [f"    {line}" for line in record_lines(record_trace)]
    return out


def record_lines(trace: RecordTrace) -> list[str]:
    """One line per outcome of a record; the hold first, as it is what to fix."""
    lines = []
    if trace.held_because is not None:
        lines.append(f"PENDING ({trace.held_because}); it is sent as soon as that is fixed")
    lines += [_outcome_text(o) for o in trace.outcomes if o.fate is not Fate.PENDING]
    return lines or ["not decided yet: the worker has not reached it (or is not running)"]


def _outcome_text(outcome: Outcome) -> str:
    if outcome.fate is Fate.INELIGIBLE:
        to = f" for {outcome.recipient}" if outcome.recipient else ""
        return f"INELIGIBLE{to}: {outcome.reason} ({outcome.detail})"
    if outcome.fate is Fate.DELIVERED:
        receipt = outcome.receipt or {}
        at = receipt["delivered_at"].strftime("%Y-%m-%d %H:%M:%S UTC")
        return (f"{outcome.recipient}: DELIVERED {at} in batch {receipt['batch_id']} "
                f"({receipt['outcome']}, as {receipt['oci_id']})")  # fmt: skip
    if outcome.fate is Fate.DEAD_LETTERED:
        reason = f"{outcome.reason}: {outcome.detail}"
        return f"{outcome.recipient}: DEAD-LETTERED {reason} ({outcome.attempts} tries)"
    return f"{outcome.recipient}: routed, delivery pending (waiting for the sink)"


def _input_dead_letter_text(letter: dict[str, Any]) -> str:
    return (
        f"the worker dead-lettered input from {letter['source_topic']}"
        f"[{letter['source_partition']}]@{letter['source_offset']}: "
        f"{letter['reason_code']}: {letter['error_message']}"
    )


def _oci_text(trace: UserTrace) -> str:
    raw = trace.profile.get("oci_id") if trace.profile else None
    state = trace.profile_state
    if state is not None and state.oci_id is not None:
        return f"{state.oci_id.canonical} (profile field: {raw!r})"
    if not raw:
        return "none (the profile field ociid is empty)"
    return f"INVALID {raw!r}: {state.oci_id_problem if state else ''}"


def _subscription_text(value: dict[str, Any] | None) -> str:
    if value is None:
        return "NOT SUBSCRIBED: no recipient was ever added on its Learning record exchange page"
    names = ", ".join(value["recipients"]) or "NO RECIPIENT (all removed)"
    required = ", ".join(value["required_activities"]) or "none"
    return f"recipients {names}; required activities {required}"
