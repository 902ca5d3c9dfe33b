"""Avro bytes our codec would not write, as another writer may."""

from __future__ import annotations

from datetime import datetime


def _zigzag_varint(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def with_timestamp_millis(data: bytes, moment: datetime, millis: int) -> bytes:
    """`data` with the timestamp-millis `moment` replaced by `millis`, as another Avro writer
    (Java's, say) may write it: a long that Python's datetime cannot hold."""
    old = _zigzag_varint(int(moment.timestamp() * 1000))
    assert data.count(old) == 1, "the timestamp's bytes are not unique in the record"
    return data.replace(old, _zigzag_varint(millis))
