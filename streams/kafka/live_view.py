"""A compacted topic kept in memory and followed live, for a long-running process.

The gateway needs a course's current recipients and a site's usernames on
request; reading the whole topic on every request would cost a consumer, an
admin client and seconds each time. A LiveView reads the topic once, on first
use, then follows it; a read that fails (Kafka gone) is retried from the start,
so a key tombstoned meanwhile is not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from streams.kafka.connection import KafkaConnection
from streams.kafka.errors import KafkaUnavailable
from streams.kafka.topic_reader import follow_topic

__all__ = ["LiveView"]

log = logging.getLogger(__name__)

V = TypeVar("V")

# A message's (key, value) to keep, (key, None) to forget the key, or None to skip it.
Entry = Callable[[Any], "tuple[Any, V | None] | None"]


class LiveView(Generic[V]):
    """Key -> value of one compacted topic, as of now; `entry` makes a message an entry."""

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        entry: Entry,
        timeout: float,
        retry_after: float = 5.0,
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.entry = entry
        self.timeout = timeout
        self.retry_after = retry_after
        self.values: dict[Any, V] = {}
        self.version = 0  # changes with every change of `values`, for caches built on them
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def current(self) -> dict[Any, V]:
        """Every key's value now; KafkaUnavailable if the topic cannot be read in time."""
        if self._task is None:
            self._task = asyncio.create_task(self._follow(), name=f"follow {self.topic}")
        try:
            async with asyncio.timeout(self.timeout):
                await self.ready.wait()
        except TimeoutError:
            raise KafkaUnavailable(
                f"{self.topic} could not be read within {self.timeout:g}s"
            ) from None
        return self.values

    def remember(self, key: Any, value: V) -> None:
        """A value this process wrote and Kafka acknowledged: in force before it is read back."""
        self.values[key] = value
        self.version += 1

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow(self) -> None:
        while True:
            values: dict[Any, V] = {}

            def caught_up(values: dict[Any, V] = values) -> None:
                self.values = values
                self.version += 1
                self.ready.set()

            try:
                async for message in follow_topic(
                    self.kafka, self.topic, timeout=self.timeout, caught_up=caught_up
                ):
                    found = self.entry(message)
                    if found is None:
                        continue
                    key, value = found
                    if value is None:
                        values.pop(key, None)
                    else:
                        values[key] = value
                    self.version += 1
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Kafka gone: report, wait, read again from the start
                self.ready.clear()
                log.warning(
                    "following %s failed, again in %ss: %s", self.topic, self.retry_after, error
                )
                await asyncio.sleep(self.retry_after)
