"""Waiting for a condition, in every kind of test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def eventually(
    condition: Callable[[], Any], timeout: float, what: str, poll: float = 0.05
) -> None:
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
        await asyncio.sleep(poll)
