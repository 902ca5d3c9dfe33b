"""The delivery window of a scheduled sink: when it opens, how far it drains, when it closes.

A window opens at the schedule's next time, reads the end offsets of the owned
partitions and drains the outbox up to them; records that arrive later wait in
Kafka for the next window. Between windows every owned partition is paused, so
Kafka is the buffer. A continuous schedule has no window: nothing is paused.
"""

from __future__ import annotations

import logging
from datetime import datetime

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from connectors.cmars.schedule import Clock, Schedule

__all__ = ["DeliveryWindow"]

log = logging.getLogger(__name__)


class DeliveryWindow:
    def __init__(
        self, consumer: AIOKafkaConsumer, schedule: Schedule, clock: Clock, open_now: bool
    ) -> None:
        self.consumer = consumer
        self.schedule = schedule
        self.clock = clock
        self._open_now = open_now
        self._next: datetime | None = None  # when the next window opens; None while one is open
        self.ends: dict[TopicPartition, int] = {}  # the open window's end offsets
        self._fetched_to: dict[TopicPartition, int] = {}
        self.opened = 0  # windows opened so far
        self.drained = 0  # windows drained (and so closed) so far

    def start(self) -> None:
        if not self.schedule.continuous:
            now = self.clock.now()
            self._next = now if self._open_now else self.schedule.next_window(now)
            log.info("schedule %s; first window %s", self.schedule.describe(), self._next)

    @property
    def is_open(self) -> bool:
        return not self.schedule.continuous and self._next is None

    @property
    def holds_all(self) -> bool:
        """True while the window is shut and every partition the sink owns is paused for it."""
        assigned = self.consumer.assignment()
        return self._next is not None and bool(assigned) and assigned <= self.consumer.paused()

    @property
    def fetched(self) -> bool:
        """True once the open window has fetched every owned partition up to its end."""
        assigned = self.consumer.assignment()
        return bool(assigned) and all(self._reached_end(tp) for tp in assigned)

    def opens_in(self) -> float | None:
        """Seconds until the next window opens (<= 0: due), or None if one is open."""
        if self._next is None:
            return None
        return (self._next - self.clock.now()).total_seconds()

    def admit(self, tp: TopicPartition, offset: int) -> bool:
        """Whether a fetched message belongs to the open window; if not, seek back to it."""
        if self.schedule.continuous:
            return True
        end = self.ends.get(tp) if self.is_open else None
        if end is None or offset >= end:
            # Fetched just before a pause or a rebalance took effect: left in Kafka,
            # with the rest of its partition's messages, for when a window has it.
            self.consumer.seek(tp, offset)
            return False
        self._fetched_to[tp] = offset + 1
        return True

    async def follow(self) -> None:
        """Open the window when it is due, and bound it for partitions it has no end for."""
        if self.schedule.continuous:
            return
        if self._next is not None and self.clock.now() >= self._next:
            self._next = None
            self.ends = {}
            self._fetched_to = {}
            self.opened += 1
            log.info("delivery window %d opens", self.opened)
        if self._next is None:
            await self._bound()

    def apply_pauses(self) -> None:
        """Pause every owned partition between windows; in one, those fetched to its end."""
        assigned = self.consumer.assignment()
        if self._next is not None:
            wanted = set(assigned)
        else:
            wanted = {tp for tp in assigned if self._reached_end(tp)}
        paused = self.consumer.paused() & assigned
        if wanted - paused:
            self.consumer.pause(*(wanted - paused))
        if paused - wanted:
            self.consumer.resume(*(paused - wanted))

    def close(self) -> None:
        self.drained += 1
        self._next = self.schedule.next_window(self.clock.now())
        log.info("window %d drained; next window %s", self.drained, self._next)

    def forget(self, tp: TopicPartition) -> None:
        """A revoked partition: if it comes back, the window reads its end again."""
        self.ends.pop(tp, None)
        self._fetched_to.pop(tp, None)

    def _reached_end(self, tp: TopicPartition) -> bool:
        if not self.is_open or tp not in self.ends:
            return False
        return self._fetched_to.get(tp, 0) >= self.ends[tp]

    async def _bound(self) -> None:
        """Read the end offsets of owned partitions that the window has no end for yet."""
        missing = [tp for tp in self.consumer.assignment() if tp not in self.ends]
        if not missing:
            return
        ends = await self.consumer.end_offsets(missing)
        for tp in missing:
            self._fetched_to[tp] = await self.consumer.position(tp)
        self.ends.update(ends)
        log.info(
            "window %d drains up to %s",
            self.opened,
            {f"{tp.topic}[{tp.partition}]": end for tp, end in sorted(ends.items())},
        )
