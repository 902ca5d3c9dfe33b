"""Dead letters: what the sink writes to lrx.dlq.<recipient> for a record that retrying cannot fix.

The value is a DeadLetter (schemas/avro/DeadLetter.avsc) holding the exact bytes
consumed. The headers follow Kafka Connect's DLQ context headers
(`__connect.errors.topic`, `.partition`, `.offset`, `.connector.name`, `.stage`,
`.class.name`, `.exception.class.name`, `.exception.message`) under our own
prefix, plus the reason code, attempt count and time, so tools that read
Connect's DLQs find the same facts in the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.cmars.batch import Entry

__all__ = ["HEADER_PREFIX", "DeadLetterMessage", "dead_letter_message"]

HEADER_PREFIX = "lrx.errors."


@dataclass(frozen=True)
class DeadLetterMessage:
    key: bytes | None
    value: dict[str, Any]
    headers: list[tuple[str, bytes]]


def dead_letter_message(
    entry: Entry,
    *,
    recipient: str,
    reason: str,
    message: str,
    exception_class: str,
    stage: str,
    component: str,
    at: datetime,
) -> DeadLetterMessage:
    first = entry.first_attempt_at or at
    last = entry.last_attempt_at or at
    value = {
        "recipient": recipient,
        "record_id": entry.record_id,
        "reason_code": reason,
        "error_message": message,
        "attempts": entry.attempts,
        "first_attempt_at": first,
        "last_attempt_at": last,
        "source_topic": entry.topic,
        "source_partition": entry.partition,
        "source_offset": entry.offset,
        "original_key": entry.key,
        "original_value": entry.value,
        "stage": stage,
    }
    facts = {
        "topic": entry.topic,
        "partition": str(entry.partition),
        "offset": str(entry.offset),
        "connector.name": f"lrx sink {recipient}",
        "stage": stage,
        "class.name": component,
        "exception.class.name": exception_class,
        "exception.message": message,
        "reason.code": reason,
        "attempts": str(entry.attempts),
        "timestamp": str(int(at.timestamp() * 1000)),
    }
    headers = [(HEADER_PREFIX + name, text.encode()) for name, text in facts.items()]
    key = entry.record_id.encode() if entry.record_id else entry.key
    return DeadLetterMessage(key, value, headers)
