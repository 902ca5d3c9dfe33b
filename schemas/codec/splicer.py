"""The splicer: encodes a message that ends with another message from that message's bytes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastavro.schema import parse_schema

if TYPE_CHECKING:
    from schemas.codec.codec import Codec

__all__ = ["Splicer"]


class Splicer:
    """Encodes a message whose last field holds another message, reusing that one's bytes.

    Avro binary is the fields' bodies one after another, with nothing around them, so
    a RoutedRecord is its own fields' body followed by the body of its LearningRecord.
    When the inner message's bytes were written with its current schema, `encode`
    writes the outer fields and copies the inner body after them, instead of encoding
    the inner record again (the pipeline's hottest path); otherwise it calls encode().
    Either way the bytes are those encode() writes for the whole message, provided the
    inner bytes decode to the inner record they are given with.
    """

    def __init__(self, codec: Codec, name: str) -> None:
        message = codec._message(name)
        *fields, last = message.expanded["fields"]
        inner = last["type"]
        if isinstance(inner, dict):
            inner = inner.get("name", "")
        inner_name = inner.rpartition(".")[2] if isinstance(inner, str) else ""
        if inner_name not in codec.messages:
            raise ValueError(f"{name}: the last field, {last['name']}, is not a message")
        self.codec = codec
        self.name = name
        self.field = last["name"]
        self.inner = inner_name
        # Where the inner body starts in raw bytes that is_current accepted: after its header.
        self._body_start = len(codec.header(inner_name))
        prefix = {**message.expanded, "fields": fields}
        # The outer fields alone, under the outer header: _write names a field that does
        # not fit as it does for encode().
        self._prefix = dataclasses.replace(
            message,
            encode_schema=parse_schema(prefix),
            decode_schema=None,
            expanded=prefix,
            checks=(),
        )

    def encode(
        self, fields: Mapping[str, Any], inner: Mapping[str, Any], raw: bytes | None
    ) -> bytes:
        """The message made of `fields` (all but the last) and `inner`, whose bytes are raw.

        raw is inner as the codec encoded it, or None. The outer fields are written as
        encode_trusted() writes them; when raw cannot be reused, the whole message goes
        through encode(). raw's body is copied unread: the caller has decoded it.
        """
        if raw is None or not self.codec.is_current(self.inner, raw):
            return self.codec.encode(self.name, {**fields, self.field: inner})
        return self.codec._write(self._prefix, fields, memoryview(raw)[self._body_start :])
