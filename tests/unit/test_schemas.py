"""The Avro contracts themselves: documented, in one namespace, agreeing with the Python enums."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import pytest

from schemas.codec import AVRO_DIR, MESSAGES, NAMESPACE, Codec
from schemas.topics import catalogue
from schemas.vocabulary import (
    ACTIVITY_SOURCES,
    COURSE_SOURCES,
    NEVER_SENT_SOURCES,
    SENT_SOURCES,
    CompletionState,
    ReasonCode,
    Source,
)

CONTRACT_FILES = sorted(AVRO_DIR.glob("*.avsc"))


def contract(name: str) -> dict[str, Any]:
    return json.loads((AVRO_DIR / f"{name}.avsc").read_text())


@pytest.mark.parametrize("enum", [Source, CompletionState, ReasonCode], ids=lambda e: e.__name__)
def test_avro_enum_equals_the_python_enum(enum: type[StrEnum]) -> None:
    schema = contract(enum.__name__)
    assert schema["type"] == "enum" and schema["name"] == enum.__name__
    # Same order too: Avro writes an enum as the index of its symbol.
    assert schema["symbols"] == [member.value for member in enum]


def test_every_source_is_in_exactly_one_grouping() -> None:
    groupings = [COURSE_SOURCES, ACTIVITY_SOURCES, NEVER_SENT_SOURCES]
    assert sorted(s for group in groupings for s in group) == sorted(Source)
    assert set(Source) - NEVER_SENT_SOURCES == SENT_SOURCES


def test_every_enum_in_any_message_is_a_shared_contract() -> None:
    codec = Codec.default()
    enums: dict[str, list[str]] = {}

    def collect(schema: Any) -> None:
        if isinstance(schema, list):
            for branch in schema:
                collect(branch)
        elif isinstance(schema, dict):
            if schema["type"] == "enum":
                enums[schema["name"]] = schema["symbols"]
            for f in schema.get("fields", ()):
                collect(f["type"])
            collect(schema.get("items"))

    for name in MESSAGES:
        collect(codec.schema(name))
    assert enums == {n: contract(n)["symbols"] for n in enums}
    assert {"Source", "CompletionState", "ReasonCode", "DeliveryOutcome"} == set(enums)


@pytest.mark.parametrize("path", CONTRACT_FILES, ids=lambda p: p.stem)
def test_every_type_and_field_is_documented_and_namespaced(path: Any) -> None:
    schema = json.loads(path.read_text())
    assert schema["name"] == path.stem
    assert schema["namespace"] == NAMESPACE
    assert schema.get("doc", "").strip(), f"{path.name} has no doc"
    for f in schema.get("fields", ()):
        assert f.get("doc", "").strip(), f"{path.stem}.{f['name']} has no doc"


@pytest.mark.parametrize("name", MESSAGES)
def test_times_are_timestamp_millis_and_ids_are_uuids(name: str) -> None:
    for f in contract(name)["fields"]:
        branches = f["type"] if isinstance(f["type"], list) else [f["type"]]
        typed = [b for b in branches if b != "null"]
        if f["name"].endswith("_at"):
            assert typed == [{"type": "long", "logicalType": "timestamp-millis"}], f["name"]
        if f["name"] in ("record_id", "batch_id"):
            assert typed == [{"type": "string", "logicalType": "uuid"}], f["name"]


def test_every_topic_value_is_a_message_the_codec_knows() -> None:
    values = {topic.value for topic in catalogue(4, ["cmars"])}
    assert values == set(MESSAGES) == set(Codec.default().messages)
