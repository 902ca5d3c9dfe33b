"""CmarsClient against a real HTTP server on localhost: what each answer means for the batch.

The server is a small aiohttp app whose answer each test scripts; it keeps the
headers of every request, so the Idempotency-Key and the credential are checked
as sent on the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from connectors.cmars.client import CmarsClient
from connectors.cmars.contract import BATCHES_PATH, RecordStatus, batch_id_of
from connectors.cmars.errors import AuthRefused, BatchRefused, BatchTooLarge, TransientFailure

IDS = ["0b6b6f43-0d3e-5f43-8d49-3f1f6ab9a001", "0b6b6f43-0d3e-5f43-8d49-3f1f6ab9a002"]
Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def cmars_answering(answer: Answer) -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        await request.read()
        return await answer(request)

    app = web.Application()
    app.router.add_post(BATCHES_PATH, handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def status(code: int, body: object = None, headers: dict[str, str] | None = None) -> Answer:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response(
            body or {"message": f"scripted {code}"}, status=code, headers=headers
        )

    return answer


async def post(url: str, timeout: float = 5.0):
    async with CmarsClient(url, "the-token", timeout) as client:
        return await client.post_batch(batch_id_of(IDS), b'{"records": []}', IDS)


async def test_a_200_gives_each_records_result_and_the_request_carries_key_and_token() -> None:
    results = {"results": [{"record_id": IDS[0], "status": "accepted"},
                           {"record_id": IDS[1], "status": "rejected", "code": "WS401",
                            "message": "no practitioner"}]}  # fmt: skip
    async with cmars_answering(status(200, results)) as (url, seen):
        answered = await post(url)
    assert answered[IDS[0]].status is RecordStatus.ACCEPTED
    assert (answered[IDS[1]].status, answered[IDS[1]].code) == (RecordStatus.REJECTED, "WS401")
    [request] = seen
    assert request.headers["Idempotency-Key"] == batch_id_of(IDS)
    assert request.headers["Authorization"] == "Bearer the-token"


@pytest.mark.parametrize(
    ("code", "error"),
    [(401, AuthRefused), (403, AuthRefused), (400, BatchRefused), (422, BatchRefused),
     (413, BatchTooLarge), (500, TransientFailure), (503, TransientFailure),
     (429, TransientFailure)],
)  # fmt: skip
async def test_each_refusal_names_what_to_do_with_the_batch(code: int, error: type) -> None:
    async with cmars_answering(status(code, {"message": "no"})) as (url, _):
        with pytest.raises(error) as raised:
            await post(url)
    assert (type(raised.value), raised.value.status, raised.value.message) == (error, code, "no")


async def test_retry_after_is_passed_on_with_a_429() -> None:
    async with cmars_answering(status(429, headers={"Retry-After": "7"})) as (url, _):
        with pytest.raises(TransientFailure) as raised:
            await post(url)
    assert raised.value.retry_after == 7.0


async def test_no_answer_within_the_request_timeout_is_a_transient_failure() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async with cmars_answering(slow) as (url, seen):
        started = asyncio.get_running_loop().time()
        with pytest.raises(TransientFailure, match="no answer .* in time"):
            await post(url, timeout=0.3)
        assert asyncio.get_running_loop().time() - started < 3
    assert len(seen) == 1


async def test_an_unreadable_200_is_retried_not_blamed_on_the_records() -> None:
    async def garbage(request: web.Request) -> web.Response:
        return web.Response(body=b"<html>proxy error</html>", status=200)

    async with cmars_answering(garbage) as (url, _):
        with pytest.raises(TransientFailure, match="unreadable 200"):
            await post(url)
    results = {"results": [{"record_id": IDS[0], "status": "accepted"}]}
    async with cmars_answering(status(200, results)) as (url, _):
        with pytest.raises(TransientFailure, match="without results for 1 record"):
            await post(url)


async def test_a_refused_connection_is_a_transient_failure() -> None:
    async with cmars_answering(status(200)) as (url, _):
        pass  # the server is gone: its port refuses connections now
    with pytest.raises(TransientFailure):
        await post(url)


def test_the_batch_id_is_derived_from_its_record_ids_alone() -> None:
    assert batch_id_of(IDS) == batch_id_of(list(reversed(IDS))) == batch_id_of(IDS + IDS[:1])
    assert batch_id_of(IDS) != batch_id_of(IDS[:1])
    # Pinned: a change would make every batch resent after an upgrade look new to CMaRS.
    assert batch_id_of(IDS) == PINNED_BATCH_ID


PINNED_BATCH_ID = "6fdb84c5-5b8e-5674-814b-1f205922ef4a"
