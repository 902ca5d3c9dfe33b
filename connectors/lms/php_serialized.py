"""PHP's serialize() format, read strictly: how Moodle's standard log stores an event's `other`.

A site that forwards rows of `logstore_standard_log`, or replays its history from
them, sends `other` as Moodle stored it: PHP-serialized text such as
`a:2:{s:13:"relateduserid";i:1;s:15:"completionstate";i:2;}` (or JSON text when
the log's `jsonformat` is on). Only the scalar and array types Moodle writes are
read; an object (`O:`), a reference or anything else is refused. Nothing is ever
evaluated: this is a small parser over the bytes.
"""

from __future__ import annotations

import re

from schemas.errors import DataError

__all__ = ["PhpSerializedError", "unserialize"]

_INT = re.compile(rb"-?\d+")
_FLOAT = re.compile(rb"-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|INF|-INF|NAN")
MAX_DEPTH = 32


class PhpSerializedError(DataError):
    """Text that is not PHP-serialized data of the kinds Moodle writes; says where."""


def unserialize(text: str) -> object:
    """The value of PHP-serialized `text`: None, bool, int, float, str, or dict for an array."""
    data = text.encode("utf-8", errors="surrogatepass")
    value, end = _value(data, 0, 0)
    if end != len(data):
        raise PhpSerializedError(f"unexpected text after the value at byte {end}")
    return value


def _value(data: bytes, at: int, depth: int) -> tuple[object, int]:
    if depth > MAX_DEPTH:
        raise PhpSerializedError(f"arrays nested deeper than {MAX_DEPTH} at byte {at}")
    kind = data[at : at + 2]
    if kind == b"N;":
        return None, at + 2
    if kind == b"b:":
        flag, end = _until(data, at + 2, b";")
        if flag not in (b"0", b"1"):
            raise PhpSerializedError(f"a boolean must be 0 or 1 at byte {at}")
        return flag == b"1", end
    if kind == b"i:":
        number, end = _until(data, at + 2, b";")
        if not _INT.fullmatch(number):
            raise PhpSerializedError(f"{number!r} is not an integer at byte {at}")
        return int(number), end
    if kind == b"d:":
        number, end = _until(data, at + 2, b";")
        if not _FLOAT.fullmatch(number):
            raise PhpSerializedError(f"{number!r} is not a number at byte {at}")
        return float(number), end
    if kind == b"s:":
        return _string(data, at)
    if kind == b"a:":
        return _array(data, at, depth)
    shown = data[at : at + 10].decode("utf-8", errors="replace") or "the end"
    raise PhpSerializedError(f"{shown!r} at byte {at} is not a value Moodle serializes")


def _string(data: bytes, at: int) -> tuple[str, int]:
    length_text, start = _until(data, at + 2, b":")
    if not length_text.isdigit():
        raise PhpSerializedError(f"a string length must be digits at byte {at}")
    length = int(length_text)
    end = start + 1 + length
    if data[start : start + 1] != b'"' or data[end : end + 2] != b'";':
        raise PhpSerializedError(f"a string of {length} bytes is not quoted as such at byte {at}")
    try:
        return data[start + 1 : end].decode("utf-8"), end + 2
    except UnicodeDecodeError:
        raise PhpSerializedError(f"the string at byte {at} is not UTF-8") from None


def _array(data: bytes, at: int, depth: int) -> tuple[dict, int]:
    count_text, start = _until(data, at + 2, b":")
    if not count_text.isdigit():
        raise PhpSerializedError(f"an array size must be digits at byte {at}")
    if data[start : start + 1] != b"{":
        raise PhpSerializedError(f"an array must open with {{ at byte {start}")
    items: dict = {}
    position = start + 1
    for _ in range(int(count_text)):
        key, position = _value(data, position, depth + 1)
        if not isinstance(key, int | str) or isinstance(key, bool):
            raise PhpSerializedError(f"an array key must be an integer or a string at {position}")
        items[key], position = _value(data, position, depth + 1)
    if data[position : position + 1] != b"}":
        raise PhpSerializedError(f"an array of {count_text.decode()} items does not end at byte "
                                 f"{position}")  # fmt: skip
    return items, position + 1


def _until(data: bytes, start: int, stop: bytes) -> tuple[bytes, int]:
    """The bytes from `start` up to `stop`, and the position just after `stop`."""
    end = data.find(stop, start)
    if end < 0:
        raise PhpSerializedError(f"{stop.decode()!r} expected after byte {start}")
    return data[start:end], end + 1
