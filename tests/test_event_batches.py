"""How the worker groups input events into batches (streams.app.event_batches)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from streams.app import event_batches


async def arriving(*gaps_and_events: float | str) -> AsyncIterator[str]:
    """Events in order; a number is a pause (seconds) before the next event."""
    for item in gaps_and_events:
        if isinstance(item, str):
            yield item
        else:
            await asyncio.sleep(item)


async def collect(batches: AsyncIterator[list[str]]) -> list[list[str]]:
    return [batch async for batch in batches]


async def test_a_batch_is_cut_at_its_size_and_the_rest_follows_in_order():
    events = [f"e{n}" for n in range(7)]
    assert await collect(event_batches(arriving(*events), 3, 5.0)) == [
        ["e0", "e1", "e2"],
        ["e3", "e4", "e5"],
        ["e6"],
    ]


async def test_a_batch_ends_when_no_further_event_is_ready():
    readiness = iter([True, False, True, True, True])
    batches = event_batches(arriving("a", "b", "c", "d"), 10, 5.0, ready=lambda: next(readiness))
    assert await collect(batches) == [["a", "b"], ["c", "d"]]


async def test_a_slow_next_event_ends_the_batch_without_being_lost():
    loop = asyncio.get_running_loop()
    started = loop.time()
    seen: list[tuple[list[str], float]] = []
    async for batch in event_batches(arriving("a", "b", 0.5, "c"), 10, 0.05):
        seen.append((batch, loop.time() - started))
    assert [batch for batch, _ in seen] == [["a", "b"], ["c"]]
    first_at = seen[0][1]
    assert first_at < 0.4, f"the waiting batch went out after {first_at:.2f}s, not at the wait"


async def test_handling_a_batch_while_the_next_event_is_awaited_loses_nothing():
    # The batch is handled (slowly) while the read of the next event is still pending.
    handled: list[str] = []
    async for batch in event_batches(arriving("a", 0.1, "b", "c", 0.1, "d"), 10, 0.02):
        await asyncio.sleep(0.15)
        handled.extend(batch)
    assert handled == ["a", "b", "c", "d"]


async def test_no_events_no_batches():
    assert await collect(event_batches(arriving(), 5, 0.01)) == []
