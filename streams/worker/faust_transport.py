"""Faust's Kafka consumer, with one fix: a partition without a committed offset
is sought back to its beginning, not left where it is.

Faust drops records fetched while its flow is stopped (during a rebalance and
table recovery) and relies on seeking back to the committed offsets to fetch
them again. aiokafka's `seek_to_committed` does not move a partition that has
no committed offset (or offset 0), so those records were skipped for good:
a new consumer group, or a worker that got partitions before anyone committed
them, could leave records undecided until the next restart. Observed here in
tests/e2e/test_pipeline_workers.py (a kept partition's position already at its end
after a rebalance, nothing committed, nothing handled) and in a fresh `lrx up`.

"No committed offset" means "from the beginning" for this group
(`consumer_auto_offset_reset` is earliest), so that is where such a partition
goes. Changelog partitions are left to Faust's table recovery, which positions
them itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["FaustApp", "seek_to_committed_or_beginning"]


async def seek_to_committed_or_beginning(
    consumer: AIOKafkaConsumer, positioned_elsewhere: Callable[[Any], bool] = lambda tp: False
) -> Mapping[Any, int | None]:
    """Seek assigned partitions to their committed offsets, and those without one
    (unless `positioned_elsewhere`) to their beginning; returns the committed offsets."""
    committed = await consumer.seek_to_committed()
    never_committed = [
        tp for tp, offset in committed.items() if not offset and not positioned_elsewhere(tp)
    ]
    if never_committed:
        await consumer.seek_to_beginning(*never_committed)
    return committed


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[Any, int | None]:
        return await self.call_thread(
            seek_to_committed_or_beginning, self._ensure_consumer(), self._is_changelog
        )

    def _is_changelog(self, tp: Any) -> bool:
        return tp.topic in self.app.tables.changelog_topics


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class FaustApp(faust.App):
    """faust.App whose consumer seeks never-committed partitions to their beginning."""

    def _new_transport(self) -> Any:
        transport = super()._new_transport()
        transport.Consumer = _Consumer
        return transport
