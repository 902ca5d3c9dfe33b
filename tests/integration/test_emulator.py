"""The CMaRS emulator over real HTTP: token, validation, idempotency, faults, refresh, queries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from connectors.cmars.contract import batch_body, batch_id_of, record_json, request_record
from connectors.doubles.cmars_emulator import CmarsState, Faults
from schemas.examples import routed_record
from tests.support.cmars import TOKEN, emulator_config, running_emulator


class Client:
    """Posts batches the way the sink does, and reads the admin endpoints."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url, self.http = url, http

    async def post(
        self, routed: list[dict[str, Any]], token: str | None = TOKEN, batch_id: str | None = None
    ) -> tuple[int, dict[str, Any], Any]:
        batch_id = batch_id or batch_id_of(r["record_id"] for r in routed)
        body = batch_body(batch_id, [record_json(request_record(r)) for r in routed], _now())
        headers = {"Idempotency-Key": batch_id}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.http.post(f"{self.url}/lrx/v1/batches", data=body, headers=headers) as a:
            return a.status, await a.json(), a.headers

    async def get(self, path: str, token: str | None = TOKEN) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.get(f"{self.url}{path}", headers=headers) as answer:
            return answer.status, await answer.json()

    async def admin(self, path: str, document: dict[str, Any] | None = None) -> dict[str, Any]:
        async with self.http.post(f"{self.url}{path}", json=document or {}) as answer:
            assert answer.status == 200, await answer.text()
            return await answer.json()


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def emulator(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Client, CmarsState]]:
    config = getattr(request, "param", None) or emulator_config(seed=1)
    async with running_emulator(config) as (url, state), aiohttp.ClientSession() as http:
        yield Client(url, http), state


async def test_token_is_checked(emulator: tuple[Client, CmarsState]) -> None:
    client, state = emulator
    routed = [routed_record(1)]
    assert (await client.post(routed, token=None))[0] == 401
    status, body, _ = await client.post(routed, token="stolen")
    assert (status, body["code"]) == (403, "forbidden")
    assert (await client.post(routed))[0] == 200
    await client.admin("/admin/faults", {"auth_failure": True})
    status, body, _ = await client.post(routed)
    assert (status, body["code"]) == (401, "unauthorized")
    await client.admin("/admin/faults", {"auth_failure": False})
    assert (await client.post(routed))[0] == 200


@pytest.mark.parametrize(
    "emulator",
    [emulator_config(roster=frozenset({"CA-ON-CPSO-10001", "CA-ON-CPSO-10002"}))],
    indirect=True,
)
async def test_each_record_is_judged_ws400_ws401_or_accepted(
    emulator: tuple[Client, CmarsState],
) -> None:
    client, state = emulator
    routed = [
        routed_record(1),  # in the roster
        routed_record(2, college="CA-ON-COPO"),  # known college, not supported by CMaRS
        routed_record(3),  # valid, but not in the roster
    ]
    status, body, _ = await client.post(routed)
    assert status == 200
    outcomes = [(r["status"], r["code"]) for r in body["results"]]
    assert outcomes == [("accepted", None), ("rejected", "WS400"), ("rejected", "WS401")]
    assert "CA-ON-COPO" in body["results"][1]["message"]
    assert list(state.records) == [routed[0]["record_id"]]


async def test_idempotent_by_batch_id_and_by_record_id(
    emulator: tuple[Client, CmarsState],
) -> None:
    client, state = emulator
    batch = [routed_record(n) for n in range(5)]
    first = await client.post(batch)
    again = await client.post(batch)
    assert first[0] == again[0] == 200
    assert again[1] == first[1]  # the same key gets the very same answer
    assert {r["status"] for r in first[1]["results"]} == {"accepted"}

    overlapping = batch[3:] + [routed_record(5)]
    status, body, _ = await client.post(overlapping)
    assert [r["status"] for r in body["results"]] == ["duplicate", "duplicate", "accepted"]

    status, body, _ = await client.post(overlapping[:1], batch_id=first[1]["batch_id"])
    assert (status, body["code"]) == (422, "idempotency_conflict")

    status, inventory = await client.get("/admin/records")
    assert (inventory["accepted"], inventory["acceptances"]) == (6, 6)
    assert (inventory["duplicates_seen"], inventory["replays"]) == (2, 1)


async def test_calendar_and_fiscal_year_periods_are_accepted(
    emulator: tuple[Client, CmarsState],
) -> None:
    client, state = emulator
    # LRX_PERIOD_START=01-01 labels a period "2026", the default 04-01 "2026-27".
    calendar, fiscal = routed_record(1, period="2026"), routed_record(2, period="2026-27")
    status, body, _ = await client.post([calendar, fiscal])
    assert status == 200, body
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]
    assert state.records[calendar["record_id"]].record["period"] == "2026"
    status, body, _ = await client.post([routed_record(3, period="26-27")])
    assert status == 400
    assert [e["field"] for e in body["errors"]] == ["records[0].period"]


async def test_malformed_batch_names_the_bad_fields(emulator: tuple[Client, CmarsState]) -> None:
    client, state = emulator
    bad_licence = routed_record(2, licence="12 34")
    other_source = routed_record(3)
    other_source["record"]["source"] = "legacy"
    status, body, _ = await client.post([routed_record(1), bad_licence, other_source])
    assert (status, body["code"]) == (400, "malformed")
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"records[1].licence", "records[2].source"}
    assert state.records == {}  # nothing of a malformed batch is processed


@pytest.mark.parametrize("emulator", [emulator_config(max_batch_records=10)], indirect=True)
async def test_too_many_records_is_413(emulator: tuple[Client, CmarsState]) -> None:
    client, _ = emulator
    status, body, _ = await client.post([routed_record(n) for n in range(11)])
    assert (status, body["code"]) == (413, "too_large")
    assert (await client.post([routed_record(n) for n in range(10)]))[0] == 200


@pytest.mark.parametrize(
    "emulator",
    [emulator_config(faults=Faults(rate_limit=3, retry_after=4))],
    indirect=True,
)
async def test_rate_limit_answers_429_with_retry_after(
    emulator: tuple[Client, CmarsState],
) -> None:
    client, _ = emulator
    # Sent at once, so that all six fall in one second even on a loaded machine.
    answers = await asyncio.gather(*(client.post([routed_record(n)]) for n in range(6)))
    statuses = sorted((status, headers.get("Retry-After")) for status, _, headers in answers)
    assert statuses == [(200, None)] * 3 + [(429, "4")] * 3


async def test_outage_and_error_rate(emulator: tuple[Client, CmarsState]) -> None:
    client, state = emulator
    await client.admin("/admin/faults", {"outage_for": 30})
    status, body, _ = await client.post([routed_record(1)])
    assert (status, body["code"]) == (503, "unavailable")
    state.faults.outages.clear()

    await client.admin("/admin/faults", {"error_rate": 0.5})
    statuses = [(await client.post([routed_record(n)]))[0] for n in range(40)]
    failures = [s for s in statuses if s >= 500]
    assert 8 <= len(failures) <= 32 and set(failures) <= {500, 502, 503}
    # Every record sent again until answered 200 is accepted exactly once.
    for n in range(40):
        while (await client.post([routed_record(n)]))[0] != 200:
            pass
    _, inventory = await client.get("/admin/records")
    assert inventory["accepted"] == inventory["acceptances"] == 40


async def test_fault_changes_are_validated(emulator: tuple[Client, CmarsState]) -> None:
    client, _ = emulator
    async with client.http.post(f"{client.url}/admin/faults", json={"error_rate": 2}) as answer:
        assert answer.status == 400
        assert "error_rate" in (await answer.json())["message"]


@pytest.mark.parametrize(
    "emulator",
    [emulator_config(roster=frozenset({"CA-ON-CPSO-10001"}))],
    indirect=True,
)
async def test_records_are_visible_only_after_the_refresh(
    emulator: tuple[Client, CmarsState],
) -> None:
    client, _ = emulator
    await client.post([routed_record(1)])
    path = "/lrx/v1/practitioners/CA-ON-CPSO-10001/records"
    assert await client.get(path) == (200, {"oci_id": "CA-ON-CPSO-10001", "records": []})
    assert await client.admin("/admin/refresh") == {"published": 1}
    status, body = await client.get(path)
    assert status == 200 and [r["record_id"] for r in body["records"]] == [
        routed_record(1)["record_id"]
    ]
    status, body = await client.get("/lrx/v1/practitioners/CA-ON-CPSO-99999/records")
    assert (status, body["code"]) == (404, "WS401")
    status, body = await client.get("/lrx/v1/practitioners/CA-ON-COPO-10001/records")
    assert (status, body["code"]) == (400, "WS400")
    assert (await client.get(path, token="stolen"))[0] == 403


async def test_latency_is_added_to_answers(emulator: tuple[Client, CmarsState]) -> None:
    client, _ = emulator
    await client.admin("/admin/faults", {"latency": 0.3})
    began = time.monotonic()
    assert (await client.post([routed_record(1)]))[0] == 200
    assert time.monotonic() - began >= 0.3
