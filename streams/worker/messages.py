"""The pipeline's output messages: RoutedRecord, IneligibleRecord, and their headers.

Both messages end with the learning record as published; the codec's Splicer
copies the input's bytes into them rather than encoding the record again (the
pipeline's hottest path), and a held record is written back as it came.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.codec import Codec, CodecError
from streams.rules.routing import Reject, Route

__all__ = ["Decoded", "MessageWriter", "RECORD_ID_HEADER", "REASON_HEADER", "RECIPIENT_HEADER"]

# Headers let a worker read back its decisions without decoding every value.
RECORD_ID_HEADER = "lrx-record-id"
REASON_HEADER = "lrx-reason"
RECIPIENT_HEADER = "lrx-recipient"

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Decoded:
    """A consumed value: its message name and record, or why it could not be read.

    It travels through the pipeline whole, so an output can reuse the exact bytes
    the record came in (`raw`); `raw` is None only for a record built here.
    """

    raw: bytes | None
    name: str | None = None
    record: dict[str, Any] | None = None
    error: CodecError | None = None

    @classmethod
    def of_record(cls, record: dict[str, Any]) -> Decoded:
        """A LearningRecord that was not read from bytes: outputs encode it afresh."""
        return cls(None, "LearningRecord", record)


class MessageWriter:
    """Builds the values and headers the pipeline writes."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._routed = codec.splicer("RoutedRecord")
        self._ineligible = codec.splicer("IneligibleRecord")

    def routed(self, route: Route, value: Decoded, now: datetime) -> tuple[bytes, Headers]:
        record = value.record
        record_id = record["record_id"]
        fields = {
            "record_id": record_id,
            "recipient": route.recipient,
            "oci_id": route.oci_id.as_record(),
            "period": route.period,
            "routed_at": now,
        }
        headers = [(RECORD_ID_HEADER, record_id.encode())]
        return self._routed.encode(fields, record, value.raw), headers

    def ineligible(self, reject: Reject, value: Decoded, now: datetime) -> tuple[bytes, Headers]:
        record = value.record
        record_id = record["record_id"]
        fields = {
            "record_id": record_id,
            "reason": str(reject.reason),
            "detail": reject.detail,
            "recipient": reject.recipient,
            "period": reject.period,
            "decided_at": now,
        }
        headers = [
            (RECORD_ID_HEADER, record_id.encode()),
            (REASON_HEADER, str(reject.reason).encode()),
            (RECIPIENT_HEADER, (reject.recipient or "").encode()),
        ]
        return self._ineligible.encode(fields, record, value.raw), headers

    def pending(self, value: Decoded) -> bytes:
        if value.raw is not None and self.codec.is_current("LearningRecord", value.raw):
            return value.raw
        return self.codec.encode("LearningRecord", value.record)
