"""The fate of learning records: one answer to "did it reach CMaRS, and if not, why?".

Every record ends in one of a few states, each written to a topic: routed to a
recipient's outbox, delivered (a receipt in lrx.delivery-receipts),
dead-lettered (lrx.dlq.<recipient>), ineligible with a reason (lrx.ineligible)
or held as pending (lrx.pending, released by a tombstone). This module reads
those topics and folds them into one `Outcome` list per record. It reuses the
worker's own `DecisionLog` for what the pipeline decided, and the rules to say
again why a pending record is held, so `lrx trace`, `lrx demo` and the record
ledger give the answer the pipeline would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

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
from streams.kafka.connection import KafkaConnection
from streams.kafka.topic_reader import read_topic
from streams.rules.activity_completions import completions_of
from streams.rules.eligibility import ProfileState
from streams.rules.routing import Hold, RoutingRules, Subscription
from streams.worker.decision_log import DecisionLog, DecisionLogError, apply_output

__all__ = [
    "Fate",
    "Outcome",
    "TopicContents",
    "outcomes_by_record",
    "outcome_topics",
    "read_outcomes",
    "read_user_topics",
    "decoded_values",
    "why_held",
]

# Messages as read from Kafka (anything with topic, partition, offset, key, value and
# headers), in partition order, by topic.
TopicContents = Mapping[str, Sequence[Any]]


class Fate(StrEnum):
    DELIVERED = "delivered"
    ROUTED = "routed"  # in the outbox; the sink has not settled it yet
    DEAD_LETTERED = "dead-lettered"
    INELIGIBLE = "ineligible"
    PENDING = "pending"


@dataclass(frozen=True)
class Outcome:
    """One state of a record: for one recipient, or (pending) for the pipeline."""

    fate: Fate
    recipient: str = ""
    reason: str = ""  # ReasonCode for ineligible, the dead letter's reason_code
    detail: str = ""
    receipt: Mapping[str, Any] | None = None  # the DeliveryReceipt, when delivered
    attempts: int = 0  # delivery attempts, when dead-lettered


def outcome_topics(recipients: Iterable[str]) -> list[str]:
    """Every topic a record's fate is written to."""
    recipients = list(recipients)
    return [
        PENDING,
        INELIGIBLE,
        DELIVERY_RECEIPTS,
        *map(outbox_topic, recipients),
        *map(dlq_topic, recipients),
    ]


def decoded_values(
    messages: Iterable[Any], codec: Codec, exact_key: bytes | None = None
) -> list[dict[str, Any]]:
    """The values that decode, tombstones and undecodable values left out.

    The worker dead-letters undecodable input and marks undecodable outputs as
    decided (see DecisionLog), so there is nothing more to say of them here.
    """
    values = []
    for message in messages:
        if message.value is None or (exact_key is not None and message.key != exact_key):
            continue
        try:
            values.append(codec.decode_any(message.value)[1])
        except CodecError:
            continue
    return values


def outcomes_by_record(
    contents: TopicContents,
    recipients: Sequence[str],
    codec: Codec,
    record_ids: Collection[str] | None = None,
) -> dict[str, list[Outcome]]:
    """Record id -> its outcomes, from the outcome topics (`outcome_topics`).

    Only `record_ids` are kept when given. A record with no outcome is not decided
    yet: the worker has not reached it.
    """
    decisions = DecisionLog()
    for topic in (PENDING, *map(outbox_topic, recipients)):
        for message in contents.get(topic, ()):
            try:
                apply_output(decisions, message, codec)
            except DecisionLogError:
                continue  # names no record: there is no record to tell it of
    outcomes: dict[str, list[Outcome]] = {}

    def add(record_id: str, outcome: Outcome) -> None:
        if record_ids is None or record_id in record_ids:
            outcomes.setdefault(record_id, []).append(outcome)

    for key_records in decisions.pending.values():
        for record_id in key_records:
            add(record_id, Outcome(Fate.PENDING))
    for value in decoded_values(contents.get(INELIGIBLE, ()), codec):
        reason, recipient = str(value["reason"]), value.get("recipient") or ""
        add(value["record_id"], Outcome(Fate.INELIGIBLE, recipient, reason, value["detail"]))
    receipts = {
        (r["recipient"], r["record_id"]): r
        for r in decoded_values(contents.get(DELIVERY_RECEIPTS, ()), codec)
    }
    letters = {
        (letter["recipient"], letter["record_id"]): letter
        for recipient in recipients
        for letter in decoded_values(contents.get(dlq_topic(recipient), ()), codec)
        if letter.get("record_id")
    }
    for recipient, record_id in sorted(decisions.routed):
        receipt = receipts.get((recipient, record_id))
        letter = letters.get((recipient, record_id))
        if receipt is not None:
            outcome = Outcome(Fate.DELIVERED, recipient, str(receipt["outcome"]), receipt=receipt)
        elif letter is not None:
            reason, detail = letter["reason_code"], letter["error_message"]
            outcome = Outcome(
                Fate.DEAD_LETTERED, recipient, reason, detail, attempts=letter["attempts"]
            )
        else:
            outcome = Outcome(Fate.ROUTED, recipient)
        add(record_id, outcome)
    return outcomes


def why_held(
    record: Mapping[str, Any],
    learning_records: Iterable[Mapping[str, Any]],
    profile: ProfileState | None,
    subscription: Mapping[str, Any] | None,
    rules: RoutingRules,
    now: datetime,
) -> str:
    """Why a pending record is held, decided again as the worker would decide it now."""
    resolved = (
        Subscription()
        if subscription is None
        else Subscription.of_course_recipients(subscription, rules.directory)
    )
    outcomes = rules.decide(record, profile, resolved, completions_of(learning_records), now)
    held = [o for o in outcomes if isinstance(o, Hold)]
    return f"{held[0].reason}: {held[0].detail}" if held else "re-check due"


async def read_outcomes(
    kafka: KafkaConnection, timeout: float, recipients: Sequence[str]
) -> dict[str, list[Any]]:
    """Every outcome topic, read to its end."""
    topics = outcome_topics(recipients)
    found = await asyncio.gather(*(read_topic(kafka, t, timeout=timeout) for t in topics))
    return dict(zip(topics, found, strict=True))


async def read_user_topics(
    kafka: KafkaConnection, timeout: float, site: str, user_id: str, recipients: Sequence[str]
) -> dict[str, list[Any]]:
    """The user's messages of the input topics, the site's courses, and every outcome topic.

    Outcome topics other than the outboxes are keyed by record id, so they are read whole.
    """
    key = user_key(site, user_id)
    prefixes = {LEARNING_RECORDS: key, USER_PROFILES: key, PIPELINE_DEAD_LETTERS: key}
    prefixes[COURSE_RECIPIENTS] = course_key(site, "")
    prefixes |= {outbox_topic(r): key for r in recipients}
    topics = [LEARNING_RECORDS, USER_PROFILES, COURSE_RECIPIENTS, PIPELINE_DEAD_LETTERS]
    topics += outcome_topics(recipients)
    found = await asyncio.gather(
        *(read_topic(kafka, t, timeout=timeout, key_prefix=prefixes.get(t, b"")) for t in topics)
    )
    return dict(zip(topics, found, strict=True))
