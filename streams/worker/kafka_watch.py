"""The worker's watch on Kafka: no answer for LRX_PIPELINE_READ_TIMEOUT seconds crashes it.

aiokafka and Faust retry a lost broker forever, so a worker whose Kafka is gone
would sit there, deciding nothing, while its supervisor thinks it is fine. The
README promises the opposite: Kafka out of reach is not about one record's data,
so the worker stops and its supervisor restarts it from the committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from streams.kafka.errors import KafkaUnavailable

__all__ = ["KafkaWatch"]

log = logging.getLogger(__name__)


class KafkaWatch:
    """Asks Kafka something every `interval` seconds; calls `lost` once it has been silent
    for `timeout` seconds."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[object]],
        timeout: float,
        lost: Callable[[BaseException], Awaitable[None]],
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.probe = probe
        self.timeout = timeout
        self.lost = lost
        self.interval = min(interval, timeout)
        self.clock = clock
        self.sleep = sleep

    async def run(self) -> None:
        """Until cancelled, or until Kafka is lost (then `lost` is awaited and this returns)."""
        answered_at = self.clock()
        while True:
            try:
                await asyncio.wait_for(self.probe(), self.interval)
                answered_at = self.clock()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure is no answer: the broker, the network, DNS
                silent = self.clock() - answered_at
                log.warning("Kafka did not answer for %.0fs: %s", silent, error)
                if silent >= self.timeout:
                    await self.lost(
                        KafkaUnavailable(
                            f"Kafka has not answered for {silent:.0f}s "
                            f"(LRX_PIPELINE_READ_TIMEOUT {self.timeout:g}s): {error}"
                        )
                    )
                    return
            await self.sleep(self.interval)
