"""Dead letters: the one builder of what lrx writes to lrx.dlq.pipeline and lrx.dlq.<recipient>.

The value is a DeadLetter (schemas/avro/DeadLetter.avsc) holding the exact bytes
consumed, so the message can be replayed. The headers follow Kafka Connect's DLQ
context headers (`__connect.errors.topic`, `.partition`, `.offset`,
`.connector.name`, `.stage`, `.class.name`, `.exception.class.name`,
`.exception.message`) under our own prefix, plus the reason code, attempt count
and time, so tools that read Connect's DLQs find the same facts in the same
shape, whichever component wrote the letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["HEADER_PREFIX", "Consumed", "DeadLetterMessage", "dead_letter_message"]

HEADER_PREFIX = "lrx.errors."


@dataclass(frozen=True)
class Consumed:
    """The message that failed, exactly as it was consumed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class DeadLetterMessage:
    key: bytes | None
    value: dict[str, Any]  # a DeadLetter, to encode
    headers: list[tuple[str, bytes]]


def dead_letter_message(
    consumed: Consumed,
    *,
    key: bytes | None,
    recipient: str,
    record_id: str | None,
    reason: str,
    message: str,
    exception_class: str,
    stage: str,
    connector: str,
    component: str,
    at: datetime,
    attempts: int = 1,
    first_attempt_at: datetime | None = None,
    last_attempt_at: datetime | None = None,
) -> DeadLetterMessage:
    """The letter of `consumed`; `reason` is a DeadLetterReason or a recipient's own code."""
    value = {
        "recipient": recipient,
        "record_id": record_id,
        "reason_code": str(reason),
        "error_message": message,
        "attempts": attempts,
        "first_attempt_at": first_attempt_at or at,
        "last_attempt_at": last_attempt_at or at,
        "source_topic": consumed.topic,
        "source_partition": consumed.partition,
        "source_offset": consumed.offset,
        "original_key": consumed.key,
        "original_value": consumed.value,
        "stage": stage,
    }
    facts = {
        "topic": consumed.topic,
        "partition": str(consumed.partition),
        "offset": str(consumed.offset),
        "connector.name": connector,
        "stage": stage,
        "class.name": component,
        "exception.class.name": exception_class,
        "exception.message": message,
        "reason.code": str(reason),
        "attempts": str(attempts),
        "timestamp": str(int(at.timestamp() * 1000)),
    }
    headers = [(HEADER_PREFIX + name, text.encode()) for name, text in facts.items()]
    return DeadLetterMessage(key, value, headers)
