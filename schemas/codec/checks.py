"""The checks fastavro's writer does not make, and the search for what in a record is wrong."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from schemas.codec.contracts import Schema

__all__ = ["UUID_TEXT"]

# The RFC 4122 text form of a UUID, as the Avro uuid logical type has it; use fullmatch.
UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

_Check = Callable[[Any], str | None]


def _check_uuid(value: Any) -> str | None:
    # A regex is 3x faster than uuid.UUID.
    if isinstance(value, str):
        return None if UUID_TEXT.fullmatch(value) else f"{value!r} is not a UUID"
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
