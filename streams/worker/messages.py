"""The pipeline's output messages: RoutedRecord, IneligibleRecord, and their headers.

Both messages end with the learning record as published; the codec's Splicer
copies the input's bytes into them rather than encoding the record again (the
pipeline's hottest path), and a held record is written back as it came.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from schemas.codec import Codec
from streams.rules.routing import Reject, Route

__all__ = ["MessageWriter", "RECORD_ID_HEADER", "REASON_HEADER", "RECIPIENT_HEADER"]

# Headers let a worker read back its decisions without decoding every value.
RECORD_ID_HEADER = "lrx-record-id"
REASON_HEADER = "lrx-reason"
RECIPIENT_HEADER = "lrx-recipient"

Headers = list[tuple[str, bytes]]


class MessageWriter:
    """Builds the values and headers the pipeline writes."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._routed = codec.splicer("RoutedRecord")
        self._ineligible = codec.splicer("IneligibleRecord")

    def routed(
        self, route: Route, record: Mapping[str, Any], raw: bytes | None, now: datetime
    ) -> tuple[bytes, Headers]:
        record_id = record["record_id"]
        fields = {
            "record_id": record_id,
            "recipient": route.recipient,
            "oci_id": route.oci_id.as_record(),
            "period": route.period,
            "routed_at": now,
        }
        headers = [(RECORD_ID_HEADER, record_id.encode())]
        return self._routed.encode(fields, record, raw), headers

    def ineligible(
        self, reject: Reject, record: Mapping[str, Any], raw: bytes | None, now: datetime
    ) -> tuple[bytes, Headers]:
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
        return self._ineligible.encode(fields, record, raw), headers

    def pending(self, record: Mapping[str, Any], raw: bytes | None) -> bytes:
        if raw is not None and self.codec.is_current("LearningRecord", raw):
            return raw
        return self.codec.encode("LearningRecord", record)
