"""The codec: Avro single-object encoding, fingerprints, history resolution and errors."""

from __future__ import annotations

import copy
import io
import uuid
from datetime import datetime
from typing import Any

import fastavro
import pytest
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from schemas.codec import (
    HEADER_SIZE,
    MARKER,
    Codec,
    CodecError,
    fingerprint_of,
    load_contracts,
)
from schemas.examples import learning_record

CODEC = Codec.default()

# The Avro specification's CRC-64-AVRO (a Rabin fingerprint), written from the spec's
# pseudo-code, to check fastavro's fingerprint rather than trust it.
_EMPTY = 0xC15D213AA4D7A795
_TABLE = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (_EMPTY & -(_fp & 1))
    _TABLE.append(_fp)


def crc64_avro(data: bytes) -> int:
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def test_crc64_avro_matches_the_apache_reference_value_for_int() -> None:
    # Apache Avro's own tests: "int" -> 0x7275d51a3f395c8f, header c3 01 8f 5c 39 3f 1a d5 75 72.
    assert crc64_avro(b'"int"') == 0x7275D51A3F395C8F
    assert fingerprint(to_parsing_canonical_form("int"), "CRC-64-AVRO") == "8f5c393f1ad57572"
    assert MARKER + fingerprint_of("int") == bytes.fromhex("c3018f5c393f1ad57572")


@pytest.mark.parametrize("name", sorted(load_contracts()))
def test_header_is_marker_and_little_endian_crc64_of_the_expanded_canonical_form(
    name: str,
) -> None:
    canonical = to_parsing_canonical_form(parse_schema(CODEC.schema(name)))
    # Expanded: shared named types are inlined, so a reader needs no other file.
    assert "ca.dualcode.lrx.CourseRef" in canonical or name not in (
        "LearningRecord",
        "RoutedRecord",
        "IneligibleRecord",
    )
    expected = crc64_avro(canonical.encode()).to_bytes(8, "little")
    assert CODEC.header(name) == MARKER + expected


def test_learning_record_round_trips_exactly() -> None:
    record = learning_record()
    data = CODEC.encode("LearningRecord", record)
    assert data[:HEADER_SIZE] == CODEC.header("LearningRecord")
    decoded = CODEC.decode("LearningRecord", data)
    assert decoded == record
    assert isinstance(decoded["record_id"], str)
    assert decoded["completed_at"].tzinfo is not None


def test_uuid_objects_are_accepted_and_come_back_as_str() -> None:
    record_id = uuid.uuid5(uuid.NAMESPACE_URL, "lrx-test")
    decoded = CODEC.decode(
        "LearningRecord", CODEC.encode("LearningRecord", learning_record(record_id=record_id))
    )
    assert decoded["record_id"] == str(record_id)


def test_fields_with_defaults_may_be_left_out() -> None:
    record = learning_record()
    del record["voided"], record["expires_at"], record["activity"]
    decoded = CODEC.decode("LearningRecord", CODEC.encode("LearningRecord", record))
    assert (decoded["voided"], decoded["expires_at"], decoded["activity"]) == (False, None, None)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            {"course": {"id": 17, "shortname": "x", "idnumber": None}},
            "course.id",
            "expected string",
        ),
        ({"source": "moodle"}, "source", "'moodle' is not one of"),
        ({"record_id": "not-a-uuid"}, "record_id", "is not a UUID"),
        ({"voided": None}, "voided", "expected boolean"),
        ({"completed_at": datetime(2026, 5, 4)}, "completed_at", "naive datetime"),
        ({"published_at": "yesterday"}, "published_at", "expected long"),
        ({"department": "ER"}, "department", "not a field of LearningRecord"),
        ({"site": None}, "site", "expected string"),
    ],
)
def test_invalid_record_names_the_field(changes: dict, field: str, words: str) -> None:
    with pytest.raises(CodecError) as caught:
        CODEC.encode("LearningRecord", learning_record(**changes))
    assert caught.value.kind == "invalid_record"
    assert caught.value.field == field
    assert f"LearningRecord.{field}" in str(caught.value) and words in str(caught.value)


def test_missing_field_without_default_is_named() -> None:
    record = learning_record()
    del record["user_id"]
    with pytest.raises(CodecError, match=r"LearningRecord\.user_id: missing") as caught:
        CODEC.encode("LearningRecord", record)
    assert caught.value.kind == "invalid_record"


@pytest.mark.parametrize(
    ("mangle", "kind"),
    [
        (lambda data: b"", "truncated"),
        (lambda data: data[:1], "truncated"),
        (lambda data: data[:7], "truncated"),
        (lambda data: data[:-4], "truncated"),
        (lambda data: data[: HEADER_SIZE + 3], "truncated"),
        (lambda data: b"\x00\x01" + data[2:], "bad_marker"),
        (lambda data: b'{"site": "sunnybrook"}', "bad_marker"),
        (lambda data: MARKER + bytes(8) + data[HEADER_SIZE:], "unknown_fingerprint"),
        (lambda data: data + b"\x00", "invalid_record"),
    ],
)
def test_undecodable_bytes_raise_a_typed_error(mangle: Any, kind: str) -> None:
    data = CODEC.encode("LearningRecord", learning_record())
    with pytest.raises(CodecError) as caught:
        CODEC.decode("LearningRecord", mangle(data))
    assert caught.value.kind == kind
    assert str(caught.value).startswith(f"{kind}: ")


def test_every_truncation_is_a_codec_error() -> None:
    data = CODEC.encode("LearningRecord", learning_record())
    for length in range(len(data)):
        with pytest.raises(CodecError) as caught:
            CODEC.decode("LearningRecord", data[:length])
        assert caught.value.kind == "truncated", length


def test_another_message_is_the_wrong_schema() -> None:
    data = CODEC.encode("LearningRecord", learning_record())
    with pytest.raises(CodecError, match="expected a UserProfile.*LearningRecord") as caught:
        CODEC.decode("UserProfile", data)
    assert caught.value.kind == "wrong_schema"
    assert CODEC.decode_any(data) == ("LearningRecord", learning_record())


def test_older_writer_is_resolved_into_the_current_reader() -> None:
    contracts = load_contracts()
    current = contracts["LearningRecord"]
    old = copy.deepcopy(current)
    # v1 had no expiry and a field the current schema dropped.
    old["fields"] = [f for f in old["fields"] if f["name"] != "expires_at"]
    old["fields"].append({"name": "legacy_note", "type": "string"})
    codec = Codec(contracts, {"LearningRecord": {1: old, 2: current}})

    body = io.BytesIO()
    written = learning_record(legacy_note="from Moodle 3.9")
    del written["expires_at"]
    fastavro.schemaless_writer(body, parse_schema(old), written)
    data = MARKER + fingerprint_of(old) + body.getvalue()

    decoded = codec.decode("LearningRecord", data)
    assert decoded == learning_record(expires_at=None)
    assert codec.decode("LearningRecord", codec.encode("LearningRecord", learning_record()))


def test_a_version_not_in_history_is_unknown() -> None:
    contracts = load_contracts()
    old = copy.deepcopy(contracts["UserProfile"])
    old["fields"] = old["fields"][:-1]
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body,
        parse_schema(old),
        {"site": "s", "user_id": "1", "username": "u", "suspended": False, "deleted": False},
    )
    with pytest.raises(CodecError) as caught:
        CODEC.decode("UserProfile", MARKER + fingerprint_of(old) + body.getvalue())
    assert caught.value.kind == "unknown_fingerprint"
