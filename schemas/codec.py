"""The one codec of lrx: Avro single-object encoding of the contracts in schemas/avro.

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
import json
import logging
import re
import struct
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from schemas.projection import BodyReader, wanted_tree

__all__ = [
    "Codec",
    "CodecError",
    "Splicer",
    "ContractError",
    "MESSAGES",
    "NAMESPACE",
    "AVRO_DIR",
    "HISTORY_DIR",
    "MARKER",
    "HEADER_SIZE",
    "load_contracts",
    "load_history",
    "fingerprint_of",
    "history_path",
]

logger = logging.getLogger(__name__)

NAMESPACE = "ca.dualcode.lrx"
AVRO_DIR = Path(__file__).resolve().parent / "avro"
HISTORY_DIR = Path(__file__).resolve().parent / "history"

# The messages that travel on topics. Other .avsc files (CourseRef, OciId, the
# enums, ...) are named types those messages share.
MESSAGES = (
    "LearningRecord",
    "UserProfile",
    "CourseRecipients",
    "RoutedRecord",
    "IneligibleRecord",
    "DeliveryReceipt",
    "DeadLetter",
)

MARKER = b"\xc3\x01"
HEADER_SIZE = len(MARKER) + 8

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "enum", "fixed", "error"})
_VERSION_FILE = re.compile(r"^v(\d+)\.avsc$")

Schema = Any  # Avro schema as JSON: a str, list or dict


class ContractError(ValueError):
    """An .avsc file or a history folder is malformed; the message names the file."""


class CodecError(ValueError):
    """Bytes that are not a message we know, or a record that does not fit its schema.

    `kind` is one of KINDS; `field` names the offending field for invalid_record.
    """

    BAD_MARKER = "bad_marker"
    UNKNOWN_FINGERPRINT = "unknown_fingerprint"
    TRUNCATED = "truncated"
    INVALID_RECORD = "invalid_record"
    WRONG_SCHEMA = "wrong_schema"
    KINDS = frozenset({BAD_MARKER, UNKNOWN_FINGERPRINT, TRUNCATED, INVALID_RECORD, WRONG_SCHEMA})

    def __init__(self, kind: str, message: str, *, field: str | None = None) -> None:
        assert kind in self.KINDS, kind
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.field = field


# --- Loading the contracts -------------------------------------------------------------


def _fullname(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _read_json(path: Path) -> Schema:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ContractError(f"{path}: cannot read schema: {error}") from None


def _expand(schema: Schema, library: Mapping[str, Schema], namespace: str | None) -> Schema:
    """Inline every named type at its first use, as Parsing Canonical Form requires."""
    defined: set[str] = set()

    def walk(node: Schema, ns: str | None) -> Schema:
        if isinstance(node, str):
            if node in _PRIMITIVES:
                return node
            full = _fullname(node, ns)
            if full in defined:
                return full
            if full not in library:
                raise ContractError(f"unknown type {full!r}")
            return walk(library[full], None)
        if isinstance(node, list):
            return [walk(branch, ns) for branch in node]
        node = dict(node)
        kind = node["type"]
        if kind in _NAMED:
            full = _fullname(node["name"], node.get("namespace", ns))
            defined.add(full)
            ns = full.rpartition(".")[0] or None
            node["name"], node["namespace"] = full.rpartition(".")[2], ns
            if kind in ("record", "error"):
                node["fields"] = [{**f, "type": walk(f["type"], ns)} for f in node["fields"]]
        elif kind == "array":
            node["items"] = walk(node["items"], ns)
        elif kind == "map":
            node["values"] = walk(node["values"], ns)
        elif kind not in _PRIMITIVES:
            node["type"] = walk(kind, ns)
        return node

    return walk(schema, namespace)


def load_contracts(avro_dir: Path = AVRO_DIR) -> dict[str, Schema]:
    """Every message schema in avro_dir, with the named types it uses inlined."""
    library: dict[str, Schema] = {}
    for path in sorted(avro_dir.glob("*.avsc")):
        schema = _read_json(path)
        if not isinstance(schema, dict) or "name" not in schema:
            raise ContractError(f"{path}: a contract file must hold one named type")
        full = _fullname(schema["name"], schema.get("namespace"))
        if full.rpartition(".")[2] != path.stem:
            raise ContractError(f"{path}: defines {full}, expected a type named {path.stem}")
        library[full] = schema
    contracts = {}
    for name in MESSAGES:
        full = f"{NAMESPACE}.{name}"
        if full not in library:
            raise ContractError(f"{avro_dir}: no {name}.avsc")
        try:
            contracts[name] = _expand(library[full], library, NAMESPACE)
        except ContractError as error:
            raise ContractError(f"{avro_dir / (name + '.avsc')}: {error}") from None
    return contracts


def history_path(name: str, version: int, history_dir: Path = HISTORY_DIR) -> Path:
    return history_dir / name / f"v{version}.avsc"


def load_history(history_dir: Path = HISTORY_DIR) -> dict[str, dict[int, Schema]]:
    """Every committed version of every message: {name: {version: expanded schema}}."""
    history: dict[str, dict[int, Schema]] = {}
    if not history_dir.is_dir():
        return history
    for folder in sorted(p for p in history_dir.iterdir() if p.is_dir()):
        versions: dict[int, Schema] = {}
        for path in sorted(folder.glob("*.avsc")):
            match = _VERSION_FILE.match(path.name)
            if not match:
                raise ContractError(f"{path}: history files are named v<N>.avsc")
            versions[int(match.group(1))] = _read_json(path)
        if versions:
            history[folder.name] = versions
    return history


def fingerprint_of(schema: Schema) -> bytes:
    """The 8 header bytes: CRC-64-AVRO of the Parsing Canonical Form, little-endian."""
    # fastavro renders the CRC-64-AVRO as the hex of its little-endian bytes, which is
    # exactly the single-object header (tests check it against the spec's algorithm).
    return bytes.fromhex(
        fingerprint(to_parsing_canonical_form(parse_schema(schema)), "CRC-64-AVRO")
    )


def _without_uuid_logical_type(schema: Schema) -> Schema:
    """The same schema with uuid strings left plain: decoded ids stay str, not uuid.UUID."""
    # fastavro applies the writer's logical type when reading; the bytes are identical.
    if isinstance(schema, list):
        return [_without_uuid_logical_type(branch) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("logicalType") == "uuid":
        return schema["type"]
    node = dict(schema)
    for key in ("items", "values", "type"):
        if key in node and not isinstance(node[key], str):
            node[key] = _without_uuid_logical_type(node[key])
    if "fields" in node:
        node["fields"] = [
            {**f, "type": _without_uuid_logical_type(f["type"])} for f in node["fields"]
        ]
    return node


# --- Checks fastavro's writer does not make ----------------------------------------------

_Check = Callable[[Any], str | None]


_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def _check_uuid(value: Any) -> str | None:
    # The Avro uuid logical type is the RFC 4122 text form; a regex is 3x faster than uuid.UUID.
    if isinstance(value, str):
        return None if _UUID_TEXT.fullmatch(value) else f"{value!r} is not a UUID"
    if isinstance(value, uuid.UUID):
        return None
    return f"expected a UUID string, got {type(value).__name__} {value!r}"


def _check_timestamp(value: Any) -> str | None:
    if isinstance(value, datetime) and value.tzinfo is None:
        return f"{value!r} is a naive datetime; timestamps must be timezone-aware"
    return None


def _check_boolean(value: Any) -> str | None:
    # fastavro writes any falsy value, None included, as false.
    if not isinstance(value, bool):
        return f"expected boolean, got {type(value).__name__} {value!r}"
    return None


def _logical_checks(
    schema: Schema, nullable: bool = False
) -> list[tuple[tuple[str, ...], _Check, bool]]:
    """(field path, check, null allowed) for uuid, timestamp and boolean fields in records."""
    if schema == "boolean":
        return [((), _check_boolean, nullable)]
    if isinstance(schema, list) and len(schema) == 2 and "null" in schema:
        return _logical_checks(schema[1] if schema[0] == "null" else schema[0], True)
    if not isinstance(schema, dict):
        return []
    logical = schema.get("logicalType")
    if logical == "uuid":
        return [((), _check_uuid, nullable)]
    if logical in ("timestamp-millis", "timestamp-micros"):
        return [((), _check_timestamp, nullable)]
    checks = []
    if schema.get("type") in ("record", "error") and not nullable:
        for f in schema["fields"]:
            for sub_path, check, null_ok in _logical_checks(f["type"]):
                checks.append(((f["name"], *sub_path), check, null_ok))
    return checks


def _first_problem(schema: Schema, datum: Any, path: str) -> tuple[str, str] | None:
    """(field path, what is wrong) for the first part of datum that does not fit schema."""
    if isinstance(schema, list):
        for branch in schema:
            if _first_problem(branch, datum, path) is None:
                return None
        kinds = [b if isinstance(b, str) else b.get("name", b["type"]) for b in schema]
        return path, f"{datum!r} fits none of {kinds}"
    kind = schema if isinstance(schema, str) else schema["type"]
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "uuid":
        problem = _check_uuid(datum)
        return (path, problem) if problem else None
    if logical in ("timestamp-millis", "timestamp-micros") and isinstance(datum, datetime):
        problem = _check_timestamp(datum)
        return (path, problem) if problem else None
    if isinstance(kind, dict | list):
        return _first_problem(kind, datum, path)
    expected: dict[str, tuple[type, ...]] = {
        "null": (type(None),),
        "boolean": (bool,),
        "int": (int,),
        "long": (int,),
        "float": (int, float),
        "double": (int, float),
        "bytes": (bytes, bytearray, memoryview),
        "string": (str,),
    }
    if kind in expected:
        if not isinstance(datum, expected[kind]) or (kind != "boolean" and isinstance(datum, bool)):
            return path, f"expected {kind}, got {type(datum).__name__} {datum!r}"
        if kind == "int" and not -(2**31) <= datum < 2**31:
            return path, f"{datum} does not fit an Avro int"
        if kind == "long" and not -(2**63) <= datum < 2**63:
            return path, f"{datum} does not fit an Avro long"
        return None
    if kind == "enum":
        if datum not in schema["symbols"]:
            return path, f"{datum!r} is not one of {schema['symbols']}"
        return None
    if kind == "array":
        if not isinstance(datum, list | tuple):
            return path, f"expected a list, got {type(datum).__name__}"
        for i, item in enumerate(datum):
            problem = _first_problem(schema["items"], item, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if kind == "map":
        if not isinstance(datum, Mapping):
            return path, f"expected a mapping, got {type(datum).__name__}"
        for key, value in datum.items():
            problem = _first_problem(schema["values"], value, f"{path}[{key!r}]")
            if problem:
                return problem
        return None
    if kind in ("record", "error"):
        if not isinstance(datum, Mapping):
            return path, f"expected a {schema['name']} record, got {type(datum).__name__}"
        names = {f["name"] for f in schema["fields"]}
        extra = sorted(set(datum) - names)
        if extra:
            return f"{path}.{extra[0]}".lstrip("."), f"not a field of {schema['name']}"
        for f in schema["fields"]:
            sub = f"{path}.{f['name']}".lstrip(".")
            if f["name"] not in datum:
                if "default" in f:
                    continue
                return sub, "missing, and the field has no default"
            problem = _first_problem(f["type"], datum[f["name"]], sub)
            if problem:
                return problem
        return None
    if kind == "fixed":
        if not isinstance(datum, bytes) or len(datum) != schema["size"]:
            return path, f"expected {schema['size']} bytes"
        return None
    return path, f"unsupported schema type {kind!r}"


# --- The codec ---------------------------------------------------------------------------


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
        prefix = {**message.expanded, "fields": fields}
        # The outer fields alone, under the outer header: _write names a field that does
        # not fit as it does for encode().
        self._prefix = _Message(
            name=name,
            header=message.header,
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
        return self.codec._write(self._prefix, fields, memoryview(raw)[HEADER_SIZE:])


def _picked(record: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: record[name] if sub is None else _picked(record[name], sub)
        for name, sub in wanted.items()
    }


def _version_label(writer: _Writer) -> str:
    if writer.version is None:
        return "(current schema)"
    return f"v{writer.version}" + (" (current)" if writer.current else "")
