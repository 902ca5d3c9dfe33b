"""Lag: the records of an outbox partition that the sink's group has not settled yet.

It runs from the group's committed offset (or, before its first commit there, the
partition's first offset) to the partition's end. The sink keeps it as a gauge
(`SinkLag`); `lrx sink cmars --dry-run` prints it (`partition_lags`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from prometheus_client import Gauge

__all__ = ["LAG_EVERY", "PartitionLag", "SinkLag", "partition_lags", "settled_offsets"]

LAG_EVERY = 2.0  # seconds between lag refreshes; each costs a committed-offsets lookup


@dataclass(frozen=True)
class PartitionLag:
    tp: TopicPartition
    committed: int | None  # None: the group has committed nothing in this partition
    settled_to: int  # the committed offset, else the partition's first offset
    end: int

    @property
    def waiting(self) -> int:
        return self.end - self.settled_to


async def settled_offsets(
    consumer: AIOKafkaConsumer, tps: Iterable[TopicPartition]
) -> dict[TopicPartition, tuple[int | None, int]]:
    """Per partition: (the group's committed offset or None, where its unsettled records begin)."""
    committed = {tp: await consumer.committed(tp) for tp in tps}
    never = [tp for tp, offset in committed.items() if offset is None]
    starts = await consumer.beginning_offsets(never) if never else {}
    return {
        tp: (offset, starts[tp] if offset is None else offset) for tp, offset in committed.items()
    }


async def partition_lags(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> list[PartitionLag]:
    """The lag of each of `tps` for the consumer's group, against the end offsets as of now."""
    ends = await consumer.end_offsets(tps)
    settled = await settled_offsets(consumer, tps)
    return [PartitionLag(tp, *settled[tp], ends[tp]) for tp in tps]


class SinkLag:
    """The sink's lag gauge, per owned partition, from the consumer's high watermarks.

    A partition's committed offset is looked up once; after that it follows the
    sink's own commits (`committed`), so a refresh costs no request.
    """

    def __init__(self, consumer: AIOKafkaConsumer, gauge: Gauge, recipient: str) -> None:
        self.consumer = consumer
        self.gauge = gauge
        self.recipient = recipient
        self._settled_to: dict[TopicPartition, int] = {}
        self._at = 0.0

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._settled_to.update(offsets)

    def forget(self, tp: TopicPartition) -> None:
        """A revoked partition: its lag is the new owner's to report."""
        self._settled_to.pop(tp, None)
        with contextlib.suppress(KeyError):
            self.gauge.remove(self.recipient, str(tp.partition))

    async def refresh(self) -> None:
        """Set the gauge, at most every LAG_EVERY seconds."""
        if time.monotonic() - self._at < LAG_EVERY:
            return
        self._at = time.monotonic()
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            if tp not in self._settled_to:
                self._settled_to[tp] = (await settled_offsets(self.consumer, [tp]))[tp][1]
            self.gauge.labels(self.recipient, str(tp.partition)).set(
                max(0, highwater - self._settled_to[tp])
            )
