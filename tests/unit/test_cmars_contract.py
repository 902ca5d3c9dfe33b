"""The CMaRS contract: openapi.yaml against the bodies the sink sends, batch ids, the schedule
and the batcher (the retry policy is in test_retry_policy.py). No broker, no server: the
emulator's answers are checked against the contract in
tests/integration/test_cmars_contract_http.py.

The contract and its validator come from tests/support/contract.py; example records from
schemas/examples.py.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from connectors.cmars.batch import Batcher, Entry
from connectors.cmars.contract import (
    MalformedRecord,
    batch_body,
    batch_id_of,
    parse_batch_result,
    record_json,
    request_record,
)
from connectors.cmars.errors import TransientFailure
from connectors.cmars.schedule import Schedule, ScheduleError
from deploy.settings import Settings, SettingsError
from schemas.examples import routed_record
from schemas.vocabulary import SENT_SOURCES
from tests.support.contract import load_contract, validator

# --- the OpenAPI document


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    return load_contract()


def test_contract_is_versioned_and_names_every_error(contract: dict[str, Any]) -> None:
    assert contract["openapi"].startswith("3.1")
    assert contract["info"]["version"] == "1.2.0"
    responses = contract["paths"]["/lrx/v1/batches"]["post"]["responses"]
    assert {"200", "400", "401", "403", "413", "429", "5XX"} <= set(responses)
    assert responses["429"]["headers"]["Retry-After"]["required"] is True
    parameters = contract["paths"]["/lrx/v1/batches"]["post"]["parameters"]
    assert [p["name"] for p in parameters] == ["Idempotency-Key"]


def test_the_contract_takes_the_sources_lrx_sends(contract: dict[str, Any]) -> None:
    record = contract["components"]["schemas"]["LearningRecord"]
    assert set(record["properties"]["source"]["enum"]) == SENT_SOURCES


def test_the_sink_request_fits_the_contract(contract: dict[str, Any]) -> None:
    routed = [routed_record(n) for n in range(3)]
    fragments = [record_json(request_record(r)) for r in routed]
    batch_id = batch_id_of(r["record_id"] for r in routed)
    body = yaml.safe_load(batch_body(batch_id, fragments, datetime.now(UTC)))
    validator(contract, "BatchRequest").validate(body)
    first = body["records"][0]
    assert first["oci_id"] == "CA-ON-CPSO-10000"
    assert (first["college"], first["licence"]) == ("CA-ON-CPSO", "10000")
    assert first["completed_at"] == "2026-05-01T12:00:00.000Z"
    assert first["course"] == {"id": "100", "shortname": "ACLS-0"}


def test_cmars_is_told_what_was_completed_whatever_the_transport(contract: dict[str, Any]) -> None:
    schema = validator(contract, "LearningRecord")
    module = routed_record(2)
    activity = {"cmid": "33", "name": "Fire SCORM", "modname": "scorm"}
    module["record"] |= {"source": "activity_completion", "activity": activity}
    request = request_record(module)
    schema.validate(request)
    assert (request["source"], request["activity"]) == (
        "activity_completion",
        {"cmid": "33", "name": "Fire SCORM", "module": "scorm"},
    )
    by_xapi = routed_record(3)
    by_xapi["record"]["source"] = "xapi"
    request = request_record(by_xapi)
    schema.validate(request)
    assert request["source"] == "course_completion" and "activity" not in request
    # The checked path (a field the fast path doubts) says the same.
    module["record"]["course"]["shortname"] = None
    with pytest.raises(MalformedRecord, match="record.course.shortname"):
        request_record(module)


def test_a_calendar_year_period_fits_the_contract(contract: dict[str, Any]) -> None:
    # LRX_PERIOD_START=01-01 labels periods "2026" (streams/rules/reporting_period.py).
    period = validator(contract, "LearningRecord")
    for label in ("2026-27", "2026"):
        period.validate(request_record(routed_record(1, period=label)))
    for label in ("26-27", "2026-2027", "2026-", "FY2026"):
        assert not period.is_valid(request_record(routed_record(1, period=label))), label


def test_request_record_names_the_missing_field() -> None:
    routed = routed_record(1)
    del routed["record"]["course"]
    with pytest.raises(MalformedRecord, match=r"record\.course: is missing"):
        request_record(routed)
    routed = routed_record(1)
    routed["oci_id"]["licence"] = 12345
    with pytest.raises(MalformedRecord, match=r"oci_id\.licence: is int, expected str"):
        request_record(routed)
    # The receipt of a delivered record carries its id as an Avro uuid.
    routed = routed_record(1)
    routed["record_id"] = "record-1"
    with pytest.raises(MalformedRecord, match="record_id: 'record-1' is not a UUID"):
        request_record(routed)


@pytest.mark.parametrize(
    "result",
    [
        b'{"record_id": "r1", "status": "accepted", "message": 5}',
        b'{"record_id": "r1", "status": "rejected", "code": {"ws": 400}}',
        b'{"record_id": "r1", "status": "accepted", "message": "lone \\ud800 surrogate"}',
        b'{"record_id": "r1", "status": "taken"}',
    ],
)
def test_an_answer_receipts_could_not_carry_is_retried_not_trusted(result: bytes) -> None:
    # Its message and code go into receipts and dead letters as Avro strings.
    with pytest.raises(TransientFailure, match="unreadable 200 answer"):
        parse_batch_result(b'{"results": [' + result + b"]}", ["r1"])


def test_an_answer_with_string_codes_and_messages_is_read() -> None:
    answer = b'{"results": [{"record_id": "r1", "status": "rejected", "code": "WS401",'
    answer += (
        b' "message": "no practitioner \xc3\xa9"}, {"record_id": "r2", "status": "duplicate"}]}'
    )
    results = parse_batch_result(answer, ["r1", "r2"])
    assert (results["r1"].code, results["r1"].message) == ("WS401", "no practitioner é")
    assert results["r2"].message is None


# --- where the sink delivers


def test_an_empty_cmars_url_means_the_local_emulator_and_a_set_one_needs_its_token() -> None:
    local = Settings.from_env({"LRX_EMULATOR_PORT": "18089", "LRX_EMULATOR_TOKEN": "emu"})
    assert local.cmars_endpoint == ("http://127.0.0.1:18089", "emu")
    real = Settings.from_env({"LRX_CMARS_URL": "https://cmars.example", "LRX_CMARS_TOKEN": "t"})
    assert real.cmars_endpoint == ("https://cmars.example", "t")
    with pytest.raises(SettingsError, match="LRX_CMARS_TOKEN is required when LRX_CMARS_URL"):
        Settings.from_env({"LRX_CMARS_URL": "https://cmars.example"})


# --- batch ids


def test_batch_id_depends_on_the_set_of_records_only() -> None:
    ids = [str(uuid.uuid4()) for _ in range(50)]
    shuffled = random.Random(1).sample(ids, len(ids))
    assert batch_id_of(ids) == batch_id_of(shuffled) == batch_id_of(ids + ids[:3])
    assert batch_id_of(ids) != batch_id_of(ids[:-1])
    assert uuid.UUID(batch_id_of(ids)).version == 5


# --- the schedule


def test_cron_windows_are_in_toronto_time_across_dst() -> None:
    schedule = Schedule.parse("0 2 * * *", "America/Toronto")
    winter = schedule.next_window(datetime(2026, 1, 10, 12, 0, tzinfo=UTC))
    assert winter == datetime(2026, 1, 11, 7, 0, tzinfo=UTC)  # 02:00 EST is 07:00 UTC
    summer = schedule.next_window(datetime(2026, 7, 10, 12, 0, tzinfo=UTC))
    assert summer == datetime(2026, 7, 11, 6, 0, tzinfo=UTC)  # 02:00 EDT is 06:00 UTC
    assert schedule.next_window(winter) == winter + timedelta(days=1)
    assert Schedule.parse("continuous", "America/Toronto").continuous


def test_bad_schedule_and_time_zone_are_named() -> None:
    with pytest.raises(ScheduleError, match="LRX_SINK_SCHEDULE='every day'"):
        Schedule.parse("every day", "America/Toronto")
    with pytest.raises(ScheduleError, match="LRX_SINK_TIMEZONE='Mars/Olympus'"):
        Schedule.parse("0 2 * * *", "Mars/Olympus")


# --- the batcher


def _entry(offset: int, size: int = 10, partition: int = 0) -> Entry:
    return Entry("lrx.outbox.cmars", partition, offset, None, b"", size=size)


def test_batcher_cuts_by_count_bytes_and_linger() -> None:
    by_count = Batcher(max_records=3, max_bytes=10_000, linger=60)
    for offset in range(7):
        by_count.add(_entry(offset))
    assert [e.offset for e in by_count.cut()] == [0, 1, 2]
    assert [e.offset for e in by_count.cut()] == [3, 4, 5]
    assert by_count.cut() == []  # one left, not full, still lingering
    assert [e.offset for e in by_count.cut(drain=True)] == [6]

    by_bytes = Batcher(max_records=100, max_bytes=25, linger=60)
    for offset in range(3):
        by_bytes.add(_entry(offset, size=10))
    assert by_bytes.full
    assert [e.offset for e in by_bytes.cut()] == [0, 1]

    by_time = Batcher(max_records=100, max_bytes=10_000, linger=0.0)
    by_time.add(_entry(0))
    assert [e.offset for e in by_time.cut()] == [0]


def test_batcher_drops_revoked_partitions_only() -> None:
    batcher = Batcher(max_records=100, max_bytes=10_000, linger=60)
    for offset in range(4):
        batcher.add(_entry(offset, partition=offset % 2))
    revoked = {_entry(0, partition=1).tp}
    assert batcher.drop(revoked) == 2
    assert [(e.partition, e.offset) for e in batcher.cut(drain=True)] == [(0, 0), (0, 2)]
