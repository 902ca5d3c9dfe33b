"""The codec: Avro single-object encoding of every lrx message.

A message is the two-byte marker C3 01, the 8-byte little-endian CRC-64-AVRO
fingerprint of the writer schema's Parsing Canonical Form, then the Avro binary
body. Any Avro implementation (Java's BinaryMessageDecoder, say) can read our
topics with our .avsc files and no schema registry.

The codec knows every version committed under schemas/history and resolves an
older writer into the current reader schema. Besides encode and decode it has two
fast paths that give the same results: `projection` decodes only some fields, and
`splicer` encodes a message that ends with another message from that message's bytes.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import fastavro
from fastavro.schema import parse_schema

from schemas.codec.checks import _Check, _first_problem, _logical_checks
from schemas.codec.contracts import (
    Schema,
    _without_uuid_logical_type,
    fingerprint_of,
    load_contracts,
    load_history,
)
from schemas.codec.errors import CodecError
from schemas.codec.projection import BodyReader, _picked, wanted_tree
from schemas.codec.splicer import Splicer

__all__ = ["Codec", "MARKER", "HEADER_SIZE"]

MARKER = b"\xc3\x01"
HEADER_SIZE = len(MARKER) + 8


@dataclass(frozen=True)
class _Writer:
    """One schema version we can read: message name, version and parsed schema."""

    name: str
    version: int | None  # None: the current schema, not (yet) committed to history
    schema: Any  # parsed by fastavro, uuid logical types removed
    current: bool


@dataclass(frozen=True)
class _Message:
    name: str
    header: bytes
    encode_schema: Any
    decode_schema: Any
    expanded: Schema
    checks: tuple[tuple[tuple[str, ...], _Check, bool], ...]


class Codec:
    """Encodes and decodes every lrx message; build once per process and share it."""

    def __init__(
        self, contracts: Mapping[str, Schema], history: Mapping[str, Mapping[int, Schema]]
    ) -> None:
        self._messages: dict[str, _Message] = {}
        self._writers: dict[bytes, _Writer] = {}
        for name, schema in contracts.items():
            header = MARKER + fingerprint_of(schema)
            self._messages[name] = _Message(
                name=name,
                header=header,
                encode_schema=parse_schema(schema),
                decode_schema=parse_schema(_without_uuid_logical_type(schema)),
                expanded=schema,
                checks=tuple(_logical_checks(schema)),
            )
        for name, versions in history.items():
            for version, schema in sorted(versions.items()):
                fp = fingerprint_of(schema)
                current = name in self._messages and fp == self._messages[name].header[2:]
                if current:
                    parsed = self._messages[name].decode_schema
                else:
                    parsed = parse_schema(_without_uuid_logical_type(schema))
                self._writers[fp] = _Writer(name, version, parsed, current)
        for name, message in self._messages.items():
            self._writers.setdefault(
                message.header[2:], _Writer(name, None, message.decode_schema, True)
            )

    @classmethod
    def default(cls) -> Codec:
        """The current schemas in schemas/avro and every version in schemas/history."""
        return cls(load_contracts(), load_history())

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(self._messages)

    def schema(self, name: str) -> Schema:
        """The current schema of a message, named types inlined (for other Avro libraries)."""
        return self._message(name).expanded

    def header(self, name: str) -> bytes:
        """Marker plus fingerprint of the current schema: the first 10 bytes of every message."""
        return self._message(name).header

    def _message(self, name: str) -> _Message:
        try:
            return self._messages[name]
        except KeyError:
            known = sorted(self._messages)
            raise KeyError(f"no message schema named {name!r}; known: {known}") from None

    def encode(self, name: str, record: Mapping[str, Any]) -> bytes:
        """Single-object encoding of record with the current schema of message name."""
        message = self._message(name)
        for path, check, null_ok in message.checks:
            value: Any = record
            for key in path:
                # A missing field is fastavro's to fill from its default or reject.
                if not isinstance(value, Mapping) or key not in value:
                    break
                value = value[key]
            else:
                if (value is not None or not null_ok) and (problem := check(value)):
                    raise CodecError(
                        CodecError.INVALID_RECORD,
                        f"{name}.{'.'.join(path)}: {problem}",
                        field=".".join(path),
                    )
        return self._write(message, record)

    def splicer(self, name: str) -> Splicer:
        """A Splicer for message `name`, whose last field must be another message."""
        return Splicer(self, name)

    def is_current(self, name: str, data: bytes) -> bool:
        """True if data starts with the header of the current schema of message `name`."""
        return data[:HEADER_SIZE] == self._message(name).header

    def encode_trusted(self, name: str, record: Mapping[str, Any]) -> bytes:
        """encode() without the codec's own checks, for records this process built itself.

        The checks (uuid text, aware timestamps, strict booleans) guard against input
        from outside; a record assembled from values that were already decoded or made
        typed here cannot fail them, and they cost as much as fastavro's write.
        fastavro still rejects a record that does not fit, with the same CodecError.
        """
        return self._write(self._message(name), record)

    def _write(
        self, message: _Message, record: Mapping[str, Any], tail: bytes | memoryview = b""
    ) -> bytes:
        """Header, record's body, then `tail`: the Avro body of fields message leaves out."""
        name = message.name
        buffer = io.BytesIO()
        buffer.write(message.header)
        try:
            fastavro.schemaless_writer(
                buffer, message.encode_schema, record, strict_allow_default=True
            )
            buffer.write(tail)
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as error:
            found = _first_problem(message.expanded, record, "")
            field, problem = found if found else ("", str(error))
            where = f"{name}.{field}" if field else name
            raise CodecError(
                CodecError.INVALID_RECORD, f"{where}: {problem}", field=field or None
            ) from error
        return buffer.getvalue()

    def decode(self, name: str, data: bytes) -> dict[str, Any]:
        """The record in data, resolved into the current schema of message name."""
        writer = self._writer_of(data)
        if writer.name != name:
            raise CodecError(
                CodecError.WRONG_SCHEMA,
                f"expected a {name}, but the bytes were written with "
                f"{writer.name} {_version_label(writer)}",
            )
        return self._read_body(writer, data)

    def projection(self, name: str, paths: Iterable[str]) -> Callable[[bytes], dict[str, Any]]:
        """A decode() of message `name` that returns only the fields at `paths` ("a.b.c").

        Bytes written with the current schema are read by a BodyReader, which steps over
        the other fields rather than building them (a third of decode()'s time for the
        CMaRS sink's nine fields of RoutedRecord). Anything else, an older writer or
        bytes it cannot read, goes through decode(): the same values, or the same
        CodecError. Skipped fields are not checked, so bytes whose only fault lies in a
        field outside `paths` decode here although decode() rejects them.
        """
        paths = tuple(paths)
        message = self._message(name)
        reader = BodyReader(message.expanded, paths)
        header, wanted = message.header, wanted_tree(paths)

        def decode(data: bytes) -> dict[str, Any]:
            if data[:HEADER_SIZE] == header:
                try:
                    return reader.read(bytes(data), HEADER_SIZE)
                except (ValueError, IndexError, OverflowError, struct.error):
                    pass  # decode() says what is wrong, in its words
            return _picked(self.decode(name, data), wanted)

        return decode

    def decode_any(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """(message name, record) for bytes of any known message, e.g. in a dead letter."""
        writer = self._writer_of(data)
        return writer.name, self._read_body(writer, data)

    def _writer_of(self, data: bytes) -> _Writer:
        if data[:2] != MARKER[: len(data)]:
            raise CodecError(
                CodecError.BAD_MARKER,
                f"starts with {bytes(data[:2]).hex(' ')}, not the single-object marker c3 01",
            )
        if len(data) < HEADER_SIZE:
            raise CodecError(
                CodecError.TRUNCATED,
                f"{len(data)} bytes, shorter than the {HEADER_SIZE}-byte single-object header",
            )
        try:
            return self._writers[bytes(data[2:HEADER_SIZE])]
        except KeyError:
            raise CodecError(
                CodecError.UNKNOWN_FINGERPRINT,
                f"writer schema fingerprint {bytes(data[2:HEADER_SIZE]).hex()} is not a "
                "current or committed schema of any message",
            ) from None

    def _read_body(self, writer: _Writer, data: bytes) -> dict[str, Any]:
        buffer = io.BytesIO(data)
        buffer.seek(HEADER_SIZE)
        reader = None if writer.current else self._messages[writer.name].decode_schema
        try:
            record = fastavro.schemaless_reader(buffer, writer.schema, reader)
        except (EOFError, IndexError) as error:
            # The compiled reader indexes past the end of the buffer for a cut-off varint
            # ("string index out of range"); any other IndexError is a bad enum/union index.
            if isinstance(error, IndexError) and "string index" not in str(error):
                raise CodecError(
                    CodecError.INVALID_RECORD,
                    f"{writer.name} {_version_label(writer)} body is corrupt: {error}",
                ) from None
            raise CodecError(
                CodecError.TRUNCATED,
                f"{writer.name} body ends early ({len(data)} bytes in all)",
            ) from None
        except (ValueError, TypeError, KeyError, UnicodeDecodeError, OverflowError) as error:
            # OverflowError: a timestamp another writer put outside Python's years 1 to 9999.
            raise CodecError(
                CodecError.INVALID_RECORD,
                f"{writer.name} {_version_label(writer)} body is corrupt: {error}",
            ) from None
        if buffer.tell() != len(data):
            raise CodecError(
                CodecError.INVALID_RECORD,
                f"{len(data) - buffer.tell()} bytes left after the {writer.name} body",
            )
        return record


def _version_label(writer: _Writer) -> str:
    if writer.version is None:
        return "(current schema)"
    return f"v{writer.version}" + (" (current)" if writer.current else "")
