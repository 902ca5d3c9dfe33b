"""What the pipeline already decided for one partition, read back from its output topics.

Every output of input partition p (outbox entries, ineligible records, pending
records and their tombstones) is written to partition p of its topic. Before a
worker handles partition p it reads those partitions to their end, so it knows
every decision that reached Kafka, including those of a worker that was killed
after writing them but before committing its input offsets. Deduplicating
against this log, rather than against a table whose changelog may lag the
outputs, is what makes a restart produce each output exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy.settings import Settings
from schemas.codec import Codec, CodecError
from schemas.topics import INELIGIBLE, PENDING, outbox_topic, user_key
from streams.messages import REASON_HEADER, RECIPIENT_HEADER, RECORD_ID_HEADER

__all__ = ["DecisionLog", "PendingRecord", "read_decision_log"]

log = logging.getLogger(__name__)


@dataclass
class PendingRecord:
    record: dict[str, Any]
    raw: bytes | None


@dataclass
class DecisionLog:
    """Decisions of one partition: routed, rejected, and held (pending) records."""

    routed: set[tuple[str, str]] = field(default_factory=set)  # (recipient, record id)
    rejected: set[tuple[str, str, str]] = field(default_factory=set)  # (id, reason, recipient)
    pending: dict[bytes, dict[str, PendingRecord]] = field(default_factory=dict)  # by user key
    holder: dict[str, bytes] = field(default_factory=dict)  # user key of each pending record id

    def is_pending(self, record_id: str) -> bool:
        return record_id in self.holder

    def hold(self, key: bytes, record: dict[str, Any], raw: bytes | None) -> None:
        self.pending.setdefault(key, {})[record["record_id"]] = PendingRecord(record, raw)
        self.holder[record["record_id"]] = key

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
    settings: Settings, codec: Codec, partitions: Iterable[int]
) -> dict[int, DecisionLog]:
    """Read the output topics' partitions to their current end, one DecisionLog each."""
    partitions = sorted(set(partitions))
    logs = {p: DecisionLog() for p in partitions}
    if not partitions:
        return logs
    topics = [outbox_topic(r) for r in settings.recipients] + [INELIGIBLE, PENDING]
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = {tp: end for tp, end in (await consumer.end_offsets(tps)).items() if end > 0}
        remaining = dict(ends)
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in batches.items():
                for message in messages:
                    _apply(logs[tp.partition], tp.topic, message, codec)
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    remaining.pop(tp, None)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.pop(tp)
    finally:
        await consumer.stop()
    for p, decisions in logs.items():
        log.info(
            "partition %s: %s routed, %s rejected, %s pending read back",
            p,
            len(decisions.routed),
            len(decisions.rejected),
            decisions.pending_count(),
        )
    return logs


def _apply(decisions: DecisionLog, topic: str, message: Any, codec: Codec) -> None:
    headers = _headers(message.headers)
    if topic == PENDING:
        _apply_pending(decisions, message, codec)
        return
    record_id = headers.get(RECORD_ID_HEADER)
    if record_id is None or (topic == INELIGIBLE and REASON_HEADER not in headers):
        # Written by something other than the pipeline: read the value itself.
        value = _decode(codec, message)
        if value is None:
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


def _apply_pending(decisions: DecisionLog, message: Any, codec: Codec) -> None:
    record_id = message.key.decode() if message.key else None
    if message.value is None:
        if record_id:
            decisions.release(record_id)
        return
    value = _decode(codec, message)
    if value is not None:
        decisions.hold(user_key(value["site"], value["user_id"]), value, message.value)


def _decode(codec: Codec, message: Any) -> dict[str, Any] | None:
    try:
        return codec.decode_any(message.value)[1]
    except CodecError as error:
        log.warning(
            "%s[%s]@%s cannot be read back, ignored: %s",
            message.topic,
            message.partition,
            message.offset,
            error,
        )
        return None


def _headers(raw: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> dict[str, str]:
    items = raw.items() if isinstance(raw, Mapping) else (raw or ())
    return {k: v.decode() for k, v in items if v is not None}
