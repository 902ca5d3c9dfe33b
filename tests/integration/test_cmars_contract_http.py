"""The CMaRS emulator's answers over real HTTP fit openapi.yaml (the rest of the contract is
checked without a server in tests/unit/test_cmars_contract.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import yaml

from connectors.cmars.contract import batch_body, batch_id_of, record_json, request_record
from schemas.examples import routed_record
from tests.support.cmars import TOKEN, emulator_config, running_emulator
from tests.support.contract import load_contract, validator


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    return load_contract()


async def test_emulator_answers_fit_the_contract(contract: dict[str, Any]) -> None:
    routed = [routed_record(n) for n in range(2)] + [routed_record(9, college="CA-ON-COPO")]
    fragments = [record_json(request_record(r)) for r in routed]
    batch_id = batch_id_of(r["record_id"] for r in routed)
    body = batch_body(batch_id, fragments, datetime.now(UTC))
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": batch_id}
    async with (
        running_emulator(emulator_config()) as (url, _),
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
