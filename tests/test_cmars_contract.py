"""The CMaRS contract: openapi.yaml against the bodies the sink sends and the emulator answers,
batch ids, the retry policy, the schedule and the batcher. No broker needed.

The helpers at the top (routed records, a running emulator, `eventually`) are shared
by tests/test_emulator.py and the tests/test_sink_*.py files.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from connectors.cmars.batch import Batcher, Entry
from connectors.cmars.contract import (
    CONTRACT_FILE,
    MalformedRecord,
    batch_body,
    batch_id_of,
    record_json,
    request_record,
)
from connectors.cmars.emulator import STATE, CmarsState, EmulatorConfig, create_app
from connectors.cmars.retry import MIN_WAIT, RetryPolicy, parse_retry_after
from connectors.cmars.schedule import Schedule, ScheduleError

TOKEN = "test-token"


def routed_record(
    n: int,
    *,
    recipient: str = "cmars",
    college: str = "CA-ON-CPSO",
    licence: str | None = None,
    site: str = "sunnybrook",
) -> dict[str, Any]:
    """The n-th RoutedRecord of a test, as the stream processor writes it to the outbox."""
    licence = licence if licence is not None else f"{10000 + n % 997:05d}"
    completed = datetime(2026, 5, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=n)
    record_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"lrx-test/{site}/{n}"))
    return {
        "record_id": record_id,
        "recipient": recipient,
        "oci_id": {"canonical": f"{college}-{licence}", "college": college, "licence": licence},
        "period": "2026-27",
        "routed_at": completed + timedelta(seconds=5),
        "record": {
            "record_id": record_id,
            "site": site,
            "user_id": str(n),
            "course": {"id": str(100 + n % 7), "shortname": f"ACLS-{n % 7}", "idnumber": None},
            "activity": None,
            "completion_state": "complete",
            "completed_at": completed,
            "source": "course_completion",
            "voided": False,
            "expires_at": None,
            "origin": {
                "moodle_event": "\\core\\event\\course_completed",
                "moodle_object_id": str(n),
                "xapi_statement_id": None,
            },  # fmt: skip
            "published_at": completed + timedelta(seconds=1),
        },
    }


@asynccontextmanager
async def running_emulator(config: EmulatorConfig) -> AsyncIterator[tuple[str, CmarsState]]:
    """The emulator on a free port of 127.0.0.1: (base URL, its state)."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", app[STATE]
    finally:
        await runner.cleanup()


async def eventually(condition: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll `condition` (sync or async) until it is true; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)


# --- the OpenAPI document


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    return yaml.safe_load(CONTRACT_FILE.read_text())


def validator(contract: dict[str, Any], schema: str) -> Draft202012Validator:
    registry = Registry().with_resource(
        "urn:cmars", Resource.from_contents(contract, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": f"urn:cmars#/components/schemas/{schema}"}, registry=registry
    )


def test_contract_is_versioned_and_names_every_error(contract: dict[str, Any]) -> None:
    assert contract["openapi"].startswith("3.1")
    assert contract["info"]["version"] == "1.0.0"
    responses = contract["paths"]["/lrx/v1/batches"]["post"]["responses"]
    assert {"200", "400", "401", "403", "413", "429", "5XX"} <= set(responses)
    assert responses["429"]["headers"]["Retry-After"]["required"] is True
    parameters = contract["paths"]["/lrx/v1/batches"]["post"]["parameters"]
    assert [p["name"] for p in parameters] == ["Idempotency-Key"]


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


def test_request_record_names_the_missing_field() -> None:
    routed = routed_record(1)
    del routed["record"]["course"]
    with pytest.raises(MalformedRecord, match=r"record\.course: is missing"):
        request_record(routed)
    routed = routed_record(1)
    routed["oci_id"]["licence"] = 12345
    with pytest.raises(MalformedRecord, match=r"oci_id\.licence: is int, expected str"):
        request_record(routed)


async def test_emulator_answers_fit_the_contract(contract: dict[str, Any]) -> None:
    routed = [routed_record(n) for n in range(2)] + [routed_record(9, college="CA-ON-COPO")]
    fragments = [record_json(request_record(r)) for r in routed]
    batch_id = batch_id_of(r["record_id"] for r in routed)
    body = batch_body(batch_id, fragments, datetime.now(UTC))
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": batch_id}
    async with (
        running_emulator(EmulatorConfig(token=TOKEN)) as (url, _),
        aiohttp.ClientSession(headers=headers) as http,
    ):
        async with http.post(f"{url}/lrx/v1/batches", data=body) as answer:
            assert answer.status == 200
            validator(contract, "BatchResult").validate(await answer.json())
        async with http.post(f"{url}/lrx/v1/batches", data=b"{") as answer:
            assert answer.status == 400
            validator(contract, "Error").validate(await answer.json())
        async with http.get(f"{url}/admin/records") as answer:
            validator(contract, "Inventory").validate(await answer.json())
        async with http.get(f"{url}/lrx/v1/openapi.yaml") as answer:
            assert yaml.safe_load(await answer.read()) == contract


# --- batch ids


def test_batch_id_depends_on_the_set_of_records_only() -> None:
    ids = [str(uuid.uuid4()) for _ in range(50)]
    shuffled = random.Random(1).sample(ids, len(ids))
    assert batch_id_of(ids) == batch_id_of(shuffled) == batch_id_of(ids + ids[:3])
    assert batch_id_of(ids) != batch_id_of(ids[:-1])
    assert uuid.UUID(batch_id_of(ids)).version == 5


# --- retries


def test_backoff_grows_with_full_jitter_under_the_cap() -> None:
    policy = RetryPolicy(initial=0.5, cap=8.0, rng=random.Random(7))
    for failures in range(1, 12):
        ceiling = min(8.0, 0.5 * 2 ** (failures - 1))
        waits = [policy.backoff(failures) for _ in range(200)]
        assert all(MIN_WAIT <= w <= max(MIN_WAIT, ceiling) for w in waits)
        # Full jitter spreads waits over the whole range, not near the ceiling only.
        assert min(waits) < ceiling / 4 + MIN_WAIT and max(waits) > ceiling * 3 / 4


def test_retry_after_is_honoured_and_max_time_gives_up() -> None:
    policy = RetryPolicy(initial=0.1, cap=1.0, max_time=30.0, rng=random.Random(3))
    assert all(5.0 <= policy.backoff(1, retry_after=5.0) <= 5.5 for _ in range(100))
    assert not policy.gives_up(elapsed=20.0, next_wait=9.0)
    assert policy.gives_up(elapsed=25.0, next_wait=9.0)
    assert not RetryPolicy(max_time=0).gives_up(elapsed=1e9, next_wait=60.0)


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


# --- the schedule


def test_cron_windows_are_in_toronto_time_across_dst() -> None:
    schedule = Schedule.parse("0 2 * * *", "America/Toronto")
    winter = schedule.next_window(datetime(2026, 1, 10, 12, 0, tzinfo=UTC))
    assert winter == datetime(2026, 1, 11, 7, 0, tzinfo=UTC)  # 02:00 EST is 07:00 UTC
    summer = schedule.next_window(datetime(2026, 7, 10, 12, 0, tzinfo=UTC))
    assert summer == datetime(2026, 7, 11, 6, 0, tzinfo=UTC)  # 02:00 EDT is 06:00 UTC
    assert schedule.next_window(winter) == winter + timedelta(days=1)
    assert Schedule.parse("continuous").continuous


def test_bad_schedule_and_time_zone_are_named() -> None:
    with pytest.raises(ScheduleError, match="LRX_SINK_SCHEDULE='every day'"):
        Schedule.parse("every day")
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
