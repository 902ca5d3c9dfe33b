"""What the pipeline already decided for one partition, read back from its output topics.

Every output of input partition p (outbox entries, ineligible records, pending
records and their tombstones) is written to partition p of its topic. Before a
worker handles partition p it reads those partitions to their end, so it knows
every decision that reached Kafka, including those of a worker that was killed
after writing them but before committing its input offsets. Deduplicating
against this log, rather than against a table whose changelog may lag the
outputs, is what makes a restart produce each output exactly once.

An output that cannot be decoded still says its record was decided: its record
id (from the header, or the key of lrx.ineligible and lrx.pending) is marked
unreadable and the pipeline never decides that record again, so it keeps the one
state it has. One whose record id cannot be told at all (an undecodable outbox
value without headers) stops the read: deciding blind could write a record twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from schemas.codec import Codec, CodecError
from schemas.errors import LrxError
from schemas.topics import INELIGIBLE, PENDING, outbox_topic, user_key
from streams.kafka.connection import KafkaConnection
from streams.kafka.topic_reader import read_to_end, reading_consumer
from streams.worker.messages import REASON_HEADER, RECIPIENT_HEADER, RECORD_ID_HEADER, Decoded
from streams.worker.observer import PipelineObserver

__all__ = ["DecisionLog", "DecisionLogError", "apply_output", "read_decision_log"]

log = logging.getLogger(__name__)


class DecisionLogError(LrxError, RuntimeError):
    """The decision log cannot be read whole: the worker must not decide on what it has."""


@dataclass
class DecisionLog:
    """Decisions of one partition: routed, rejected, and held (pending) records."""

    routed: set[tuple[str, str]] = field(default_factory=set)  # (recipient, record id)
    rejected: set[tuple[str, str, str]] = field(default_factory=set)  # (id, reason, recipient)
    pending: dict[bytes, dict[str, Decoded]] = field(default_factory=dict)  # by user key
    holder: dict[str, bytes] = field(default_factory=dict)  # user key of each pending record id
    unreadable: set[str] = field(default_factory=set)  # ids with an output we cannot decode

    def is_pending(self, record_id: str) -> bool:
        return record_id in self.holder

    def hold(self, key: bytes, value: Decoded) -> None:
        record_id = value.record["record_id"]
        self.pending.setdefault(key, {})[record_id] = value
        self.holder[record_id] = key

    def release(self, record_id: str) -> None:
        key = self.holder.pop(record_id, None)
        held = self.pending.get(key) if key is not None else None
        if held is not None:
            held.pop(record_id, None)
            if not held:
                del self.pending[key]

    def pending_count(self) -> int:
        return sum(len(held) for held in self.pending.values())


async def read_decision_log(
    kafka: KafkaConnection,
    timeout: float,
    recipients: Sequence[str],
    codec: Codec,
    partitions: Iterable[int],
    observer: PipelineObserver | None = None,
) -> dict[int, DecisionLog]:
    """Read the output topics' partitions to their current end, one DecisionLog each.

    Raises DecisionLogError when an output names no record it can be told apart
    by, or when reading makes no progress for `timeout` seconds
    (LRX_PIPELINE_READ_TIMEOUT).
    """
    partitions = sorted(set(partitions))
    logs = {p: DecisionLog() for p in partitions}
    if not partitions:
        return logs
    observer = observer or PipelineObserver()
    topics = [outbox_topic(r) for r in recipients] + [INELIGIBLE, PENDING]
    consumer = reading_consumer(kafka, timeout, isolation_level="read_committed")

    def stalled(remaining: list[TopicPartition]) -> DecisionLogError:
        return DecisionLogError(
            f"reading the decision log made no progress for {timeout:g}s "
            "(LRX_PIPELINE_READ_TIMEOUT); left: "
            + ", ".join(f"{tp.topic}[{tp.partition}]" for tp in remaining)
        )

    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in partitions]
        # A decision written since the read began is a decision all the same.
        async for message in read_to_end(
            consumer, tps, timeout=timeout, stalled=stalled, past_end=True
        ):
            apply_output(logs[message.partition], message, codec, observer)
    finally:
        await consumer.stop()
    for p, decisions in logs.items():
        log.info(
            "partition %s: %s routed, %s rejected, %s pending, %s unreadable read back",
            p,
            len(decisions.routed),
            len(decisions.rejected),
            decisions.pending_count(),
            len(decisions.unreadable),
        )
    return logs


def apply_output(
    decisions: DecisionLog, message: Any, codec: Codec, observer: PipelineObserver | None = None
) -> None:
    """Add what one output message (of an outbox, lrx.ineligible or lrx.pending) decided."""
    observer = observer or PipelineObserver()
    topic = message.topic
    headers = _headers(message.headers)
    if topic == PENDING:
        _apply_pending(decisions, message, codec, observer)
        return
    record_id = headers.get(RECORD_ID_HEADER)
    if record_id is None or (topic == INELIGIBLE and REASON_HEADER not in headers):
        # Written by something other than the pipeline: read the value itself.
        value = _decode(codec, message, observer)
        if value is None:
            _mark_unreadable(decisions, message, record_id or _id_from_key(topic, message))
            return
        record_id = value["record_id"]
        if topic == INELIGIBLE:
            headers[REASON_HEADER] = value["reason"]
            headers[RECIPIENT_HEADER] = value.get("recipient") or ""
        else:
            headers[RECIPIENT_HEADER] = value["recipient"]
    if topic == INELIGIBLE:
        decisions.rejected.add(
            (record_id, headers[REASON_HEADER], headers.get(RECIPIENT_HEADER, ""))
        )
    else:
        decisions.routed.add((topic.removeprefix(outbox_topic("")), record_id))


def _apply_pending(
    decisions: DecisionLog, message: Any, codec: Codec, observer: PipelineObserver
) -> None:
    record_id = message.key.decode() if message.key else None
    if message.value is None:
        if record_id:
            decisions.release(record_id)
        return
    value = _decode(codec, message, observer)
    if value is None:
        _mark_unreadable(decisions, message, record_id)
        return
    decisions.hold(
        user_key(value["site"], value["user_id"]), Decoded(message.value, "LearningRecord", value)
    )


def _id_from_key(topic: str, message: Any) -> str | None:
    # lrx.ineligible is keyed by record id; an outbox by user, which names no record.
    if topic == INELIGIBLE and message.key:
        return message.key.decode(errors="replace")
    return None


def _mark_unreadable(decisions: DecisionLog, message: Any, record_id: str | None) -> None:
    where = f"{message.topic}[{message.partition}]@{message.offset}"
    if record_id is None:
        raise DecisionLogError(
            f"{where} cannot be decoded and names no record id (no {RECORD_ID_HEADER} "
            "header): the worker cannot tell which record it decided"
        )
    log.error(
        "%s cannot be decoded: record %s counts as decided and will not be decided again",
        where,
        record_id,
    )
    decisions.unreadable.add(record_id)


def _decode(codec: Codec, message: Any, observer: PipelineObserver) -> dict[str, Any] | None:
    try:
        return codec.decode_any(message.value)[1]
    except CodecError as error:
        log.error(
            "%s[%s]@%s cannot be read back: %s",
            message.topic,
            message.partition,
            message.offset,
            error,
        )
        observer.unreadable(message.topic)
        return None


def _headers(raw: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> dict[str, str]:
    items = raw.items() if isinstance(raw, Mapping) else (raw or ())
    return {k: v.decode() for k, v in items if v is not None}
