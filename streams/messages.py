"""The pipeline's output messages: RoutedRecord, IneligibleRecord, and their headers.

Both messages end with the learning record as published. Avro binary is the
fields' encodings one after another, so when the input was written with the
current LearningRecord schema its body is copied as is after the new fields,
rather than decoded and encoded again (the pipeline's hottest path).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import fastavro

from schemas.codec import HEADER_SIZE, Codec
from streams.routing import Reject, Route

__all__ = ["MessageWriter", "RECORD_ID_HEADER", "REASON_HEADER", "RECIPIENT_HEADER"]

# Headers let a worker read back its decisions without decoding every value.
RECORD_ID_HEADER = "lrx-record-id"
REASON_HEADER = "lrx-reason"
RECIPIENT_HEADER = "lrx-recipient"

Headers = list[tuple[str, bytes]]


class _Splicer:
    """Encodes a message whose last field is `record` from its other fields plus raw record."""

    def __init__(self, codec: Codec, name: str) -> None:
        self.codec = codec
        self.name = name
        schema = codec.schema(name)
        fields = schema["fields"]
        if fields[-1]["name"] != "record":
            raise ValueError(f"{name}: the last field is not `record`; cannot splice")
        self.header = codec.header(name)
        self.record_header = codec.header("LearningRecord")
        self.prefix_schema = fastavro.parse_schema(
            {**schema, "name": f"{name}Prefix", "fields": fields[:-1]}, named_schemas={}
        )

    def encode(self, fields: dict[str, Any], record: Mapping[str, Any], raw: bytes | None) -> bytes:
        if raw is None or raw[:HEADER_SIZE] != self.record_header:
            return self.codec.encode(self.name, {**fields, "record": record})
        buffer = io.BytesIO()
        buffer.write(self.header)
        fastavro.schemaless_writer(buffer, self.prefix_schema, fields)
        buffer.write(memoryview(raw)[HEADER_SIZE:])
        return buffer.getvalue()


class MessageWriter:
    """Builds the values and headers the pipeline writes."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._routed = _Splicer(codec, "RoutedRecord")
        self._ineligible = _Splicer(codec, "IneligibleRecord")

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
        if raw is not None and raw[:HEADER_SIZE] == self._routed.record_header:
            return raw
        return self.codec.encode("LearningRecord", record)
