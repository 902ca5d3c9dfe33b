"""The codec's fast paths: projected decoding (schemas/codec/projection.py), trusted encoding and
splicing a message's bytes into the message that ends with it.

Each must give exactly what the checking path gives, or the same CodecError.
"""

from __future__ import annotations

import copy
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest
from fastavro.schema import parse_schema

from connectors.cmars.contract import ROUTED_FIELDS
from schemas.codec import HEADER_SIZE, MARKER, Codec, CodecError, fingerprint_of, load_contracts
from schemas.codec.projection import BodyReader, wanted_tree
from schemas.examples import delivery_receipt, learning_record, routed_record
from tests.support.codec import with_timestamp_millis

CODEC = Codec.default()


def picked(record: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] if v is None else picked(record[k], v) for k, v in wanted.items()}


def routed_variants() -> list[dict[str, Any]]:
    plain = routed_record(7)
    rich = routed_record(2**20, site="sí-te ✓", licence="0" * 200)
    rich["record"]["activity"] = {"cmid": "9", "name": "Supporting Documentation", "modname": None}
    rich["record"]["course"]["idnumber"] = "ACLS/ü"
    rich["record"]["expires_at"] = datetime(2099, 1, 1, tzinfo=UTC)
    rich["record"]["completed_at"] = datetime(1969, 12, 31, 23, 59, 59, 1000, tzinfo=UTC)
    rich["record"]["voided"] = True
    rich["record"]["source"] = "xapi"
    rich["record"]["origin"]["xapi_statement_id"] = "statement-1"
    rich["routed_at"] = datetime(2026, 5, 1, tzinfo=UTC) + timedelta(days=10**5)
    return [plain, rich]


@pytest.mark.parametrize("routed", routed_variants())
def test_projection_gives_the_fields_decode_gives(routed: dict[str, Any]) -> None:
    data = CODEC.encode("RoutedRecord", routed)
    full = CODEC.decode("RoutedRecord", data)
    assert CODEC.projection("RoutedRecord", ROUTED_FIELDS)(data) == picked(
        full, wanted_tree(ROUTED_FIELDS)
    )
    every = [f["name"] for f in CODEC.schema("RoutedRecord")["fields"]]
    assert CODEC.projection("RoutedRecord", every)(data) == full


def test_projection_of_a_whole_learning_record_is_decode() -> None:
    record = learning_record()
    data = CODEC.encode("LearningRecord", record)
    every = [f["name"] for f in CODEC.schema("LearningRecord")["fields"]]
    assert CODEC.projection("LearningRecord", every)(data) == CODEC.decode("LearningRecord", data)


def test_every_truncation_is_the_same_codec_error_as_decode() -> None:
    data = CODEC.encode("RoutedRecord", routed_variants()[1])
    read = CODEC.projection("RoutedRecord", ROUTED_FIELDS)
    for length in range(len(data)):
        with pytest.raises(CodecError) as caught:
            read(data[:length])
        assert caught.value.kind == "truncated", length


@pytest.mark.parametrize(
    ("mangle", "kind"),
    [
        (lambda data: b"\x00\x01" + data[2:], "bad_marker"),
        (lambda data: MARKER + bytes(8) + data[HEADER_SIZE:], "unknown_fingerprint"),
        (lambda data: data + b"\x00", "invalid_record"),
        (lambda data: CODEC.encode("LearningRecord", learning_record()), "wrong_schema"),
    ],
)
def test_unreadable_bytes_are_the_same_codec_error_as_decode(mangle: Any, kind: str) -> None:
    data = mangle(CODEC.encode("RoutedRecord", routed_record(1)))
    with pytest.raises(CodecError) as caught:
        CODEC.projection("RoutedRecord", ROUTED_FIELDS)(data)
    assert caught.value.kind == kind


def test_a_corrupt_wanted_string_is_the_codec_error_of_decode() -> None:
    routed = routed_record(1, site="zzzz")
    data = CODEC.encode("RoutedRecord", routed).replace(b"zzzz", b"z\xffzz")
    with pytest.raises(CodecError) as caught:
        CODEC.projection("RoutedRecord", ROUTED_FIELDS)(data)
    assert caught.value.kind == "invalid_record"


def test_a_timestamp_past_year_9999_is_a_codec_error_not_an_overflow() -> None:
    routed = routed_record(1)
    data = with_timestamp_millis(
        CODEC.encode("RoutedRecord", routed), routed["record"]["completed_at"], 10**15
    )
    for read in (
        CODEC.projection("RoutedRecord", ROUTED_FIELDS),
        lambda data: CODEC.decode("RoutedRecord", data),
    ):
        with pytest.raises(CodecError, match="out of range") as caught:
            read(data)
        assert caught.value.kind == "invalid_record"


def test_a_path_that_names_no_field_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="record.colour: not a field of LearningRecord"):
        BodyReader(CODEC.schema("RoutedRecord"), ["record.colour"])


def test_trusted_encoding_writes_the_bytes_encode_writes() -> None:
    assert CODEC.encode_trusted("DeliveryReceipt", delivery_receipt()) == CODEC.encode(
        "DeliveryReceipt", delivery_receipt()
    )


def test_trusted_encoding_still_names_the_field_that_does_not_fit() -> None:
    with pytest.raises(CodecError, match=r"DeliveryReceipt\.oci_id: expected string") as caught:
        CODEC.encode_trusted("DeliveryReceipt", delivery_receipt(oci_id=12345))
    assert caught.value.field == "oci_id"


def outer_and_inner(routed: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A RoutedRecord's own fields, and its LearningRecord."""
    fields = dict(routed)
    return fields, fields.pop("record")


@pytest.mark.parametrize("routed", routed_variants())
def test_a_spliced_routed_record_is_the_bytes_encode_writes(routed: dict[str, Any]) -> None:
    fields, inner = outer_and_inner(routed)
    raw = CODEC.encode("LearningRecord", inner)
    spliced = CODEC.splicer("RoutedRecord").encode(fields, inner, raw)
    assert spliced == CODEC.encode("RoutedRecord", routed)
    assert CODEC.decode("RoutedRecord", spliced)["record"] == CODEC.decode("LearningRecord", raw)


def test_a_spliced_ineligible_record_is_the_bytes_encode_writes() -> None:
    fields = {
        "record_id": learning_record()["record_id"],
        "reason": "voided",
        "detail": "the LMS voided this record",
        "recipient": None,
        "period": "2026-27",
        "decided_at": datetime(2026, 5, 5, 1, 2, 3, 456000, tzinfo=UTC),
    }
    raw = CODEC.encode("LearningRecord", learning_record())
    spliced = CODEC.splicer("IneligibleRecord").encode(fields, learning_record(), raw)
    assert spliced == CODEC.encode("IneligibleRecord", {**fields, "record": learning_record()})
    assert CODEC.decode("IneligibleRecord", spliced) == {**fields, "record": learning_record()}


def test_splicing_copies_the_inner_bytes_rather_than_encoding_the_inner_record() -> None:
    # The caller vouches that raw is the record; the splicer does not look.
    fields, inner = outer_and_inner(routed_record(1))
    raw = CODEC.encode("LearningRecord", learning_record())
    spliced = CODEC.splicer("RoutedRecord").encode(fields, inner, raw)
    assert spliced.endswith(raw[HEADER_SIZE:])
    assert CODEC.decode("RoutedRecord", spliced) == {**fields, "record": learning_record()}


def test_without_current_inner_bytes_the_splicer_encodes_the_whole_message() -> None:
    fields, inner = outer_and_inner(routed_record(3))
    splicer = CODEC.splicer("RoutedRecord")
    whole = CODEC.encode("RoutedRecord", routed_record(3))
    assert splicer.encode(fields, inner, None) == whole
    # Bytes of another message, or not a message at all, are never copied.
    assert splicer.encode(fields, inner, CODEC.encode("RoutedRecord", routed_record(9))) == whole
    assert splicer.encode(fields, inner, b"\x00" * 40) == whole


def test_inner_bytes_of_an_older_schema_version_are_encoded_again_in_the_current_one() -> None:
    contracts = load_contracts()
    old = copy.deepcopy(contracts["LearningRecord"])
    old["fields"] = [f for f in old["fields"] if f["name"] != "expires_at"]
    codec = Codec(contracts, {"LearningRecord": {1: old}})
    written = learning_record()
    del written["expires_at"]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parse_schema(old), written)
    raw = MARKER + fingerprint_of(old) + body.getvalue()
    inner = codec.decode("LearningRecord", raw)
    fields, _ = outer_and_inner(routed_record(5))

    spliced = codec.splicer("RoutedRecord").encode(fields, inner, raw)
    assert not codec.is_current("LearningRecord", raw)
    assert spliced == codec.encode("RoutedRecord", {**fields, "record": inner})
    assert codec.decode("RoutedRecord", spliced)["record"] == learning_record(expires_at=None)


def test_a_spliced_field_that_does_not_fit_is_the_codec_error_of_encode() -> None:
    fields, inner = outer_and_inner(routed_record(2))
    fields["routed_at"] = "yesterday"
    raw = CODEC.encode("LearningRecord", inner)
    with pytest.raises(CodecError) as spliced:
        CODEC.splicer("RoutedRecord").encode(fields, inner, raw)
    with pytest.raises(CodecError) as encoded:
        CODEC.encode("RoutedRecord", {**fields, "record": inner})
    assert str(spliced.value) == str(encoded.value)
    assert spliced.value.field == encoded.value.field == "routed_at"


def test_only_a_message_that_ends_with_a_message_can_be_spliced() -> None:
    assert CODEC.splicer("RoutedRecord").inner == "LearningRecord"
    with pytest.raises(ValueError, match="published_at, is not a message"):
        CODEC.splicer("LearningRecord")
