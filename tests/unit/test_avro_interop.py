"""Other Avro implementations read what we write: fastavro against avro-python3 (Apache).

avro-python3 1.10 ignores logical types: it reads and writes timestamp-millis as
a plain long and uuid as a plain string, where our codec gives aware datetimes
and str. Values are therefore compared in their raw Avro form (epoch millis),
which is what another language would see on the wire.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import avro.io
import avro.schema
import pytest
from avro.schemanormalization import Fingerprint, ToParsingCanonicalForm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import HEADER_SIZE, MARKER, MESSAGES, Codec

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CODEC = Codec.default()
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _named(schema: Any, found: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema, list):
        for branch in schema:
            _named(branch, found)
    elif isinstance(schema, dict):
        if schema["type"] in ("record", "enum", "fixed"):
            found[f"{schema['namespace']}.{schema['name']}"] = schema
            found[schema["name"]] = schema
        for f in schema.get("fields", ()):
            _named(f["type"], found)
        for key in ("items", "values"):
            if key in schema:
                _named(schema[key], found)
    return found


def datums(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of schema as our codec takes them (aware datetimes, uuid strings)."""
    if isinstance(schema, list):
        return st.one_of([datums(branch, named) for branch in schema])
    if isinstance(schema, str) and schema not in PRIMITIVES:
        return datums(named[schema], named)
    kind = schema if isinstance(schema, str) else schema["type"]
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "uuid":
        return st.uuids().map(str)
    if logical == "timestamp-millis":
        millis = st.integers(-(10**12), 4 * 10**12)  # 1938 to 2096
        return millis.map(lambda ms: EPOCH + timedelta(milliseconds=ms))
    if isinstance(kind, dict | list):
        return datums(kind, named)
    simple = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "double": st.floats(allow_nan=False),
        "bytes": st.binary(max_size=40),
        "string": st.text(max_size=30),
    }
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(datums(schema["items"], named), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=5), datums(schema["values"], named), max_size=3)
    if kind == "record":
        return st.fixed_dictionaries(
            {f["name"]: datums(f["type"], named) for f in schema["fields"]}
        )
    raise AssertionError(f"no strategy for {schema!r}")


def raw(schema: Any, datum: Any, named: dict[str, Any]) -> Any:
    """datum as avro-python3 sees it: timestamps as epoch millis."""
    if isinstance(schema, list):
        if datum is None:
            return None
        (branch,) = [b for b in schema if b != "null"]
        return raw(branch, datum, named)
    if isinstance(schema, str) and schema not in PRIMITIVES:
        return raw(named[schema], datum, named)
    if isinstance(schema, dict):
        if schema.get("logicalType") == "timestamp-millis":
            return (datum - EPOCH) // timedelta(milliseconds=1)
        if schema["type"] == "record":
            return {f["name"]: raw(f["type"], datum[f["name"]], named) for f in schema["fields"]}
        if schema["type"] == "array":
            return [raw(schema["items"], item, named) for item in datum]
    return datum


@pytest.mark.parametrize("name", MESSAGES)
def test_apache_computes_the_same_fingerprint(name: str) -> None:
    apache_schema = avro.schema.parse(json.dumps(CODEC.schema(name)))
    canonical = ToParsingCanonicalForm(apache_schema)
    assert CODEC.header(name) == MARKER + Fingerprint(canonical, "CRC-64-AVRO")


@pytest.mark.parametrize("name", MESSAGES)
def test_fastavro_writes_what_apache_reads(name: str) -> None:
    schema = CODEC.schema(name)
    named = _named(schema, {})
    apache_reader = avro.io.DatumReader(avro.schema.parse(json.dumps(schema)))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(datums(schema, named))
    def check(record: dict[str, Any]) -> None:
        data = CODEC.encode(name, record)
        body = io.BytesIO(data[HEADER_SIZE:])
        assert apache_reader.read(avro.io.BinaryDecoder(body)) == raw(schema, record, named)
        assert body.tell() == len(data) - HEADER_SIZE

    check()


@pytest.mark.parametrize("name", MESSAGES)
def test_apache_writes_what_fastavro_reads(name: str) -> None:
    schema = CODEC.schema(name)
    named = _named(schema, {})
    apache_writer = avro.io.DatumWriter(avro.schema.parse(json.dumps(schema)))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(datums(schema, named))
    def check(record: dict[str, Any]) -> None:
        body = io.BytesIO()
        apache_writer.write(raw(schema, record, named), avro.io.BinaryEncoder(body))
        assert CODEC.decode(name, CODEC.header(name) + body.getvalue()) == record

    check()
