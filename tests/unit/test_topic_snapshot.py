"""Reading partitions to the end offsets they had when the read began (no Kafka)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition

from streams.kafka.topic_reader import read_to_end

A, B, C = (TopicPartition("t", p) for p in range(3))


MARKER = object()  # a transaction marker: it takes an offset but is no message


class LogConsumer:
    """A consumer over in-memory partition logs: offset -> value, gaps allowed (compaction).

    `later` is appended to a partition's log once its end offset has been taken, as
    a write racing the read; a partition in `stuck` never answers a fetch.
    """

    def __init__(self, logs, later=None, stuck=()) -> None:
        self.logs = {tp: dict(log) for tp, log in logs.items()}
        self.later = later or {}
        self.stuck = set(stuck)
        self.positions: dict[TopicPartition, int] = {}
        self.fetched: list[TopicPartition] = []

    def assign(self, tps) -> None:
        self.assigned = list(tps)

    async def seek_to_beginning(self, *tps) -> None:
        self.positions.update({tp: 0 for tp in tps})

    async def end_offsets(self, tps):
        ends = {tp: max(self.logs[tp], default=-1) + 1 for tp in tps}
        for tp, log in self.later.items():
            self.logs[tp].update(log)
        return ends

    async def getmany(self, *tps, timeout_ms):
        await asyncio.sleep(0.001)
        batches = {}
        for tp in tps:
            self.fetched.append(tp)
            log = self.logs.get(tp, {})
            if tp in self.stuck:
                continue
            offsets = sorted(o for o in log if o >= self.positions[tp])
            messages = [
                SimpleNamespace(partition=tp.partition, offset=o)
                for o in offsets
                if log[o] is not MARKER
            ]
            if messages:
                batches[tp] = messages
            if offsets:
                self.positions[tp] = offsets[-1] + 1
        return batches

    async def position(self, tp) -> int:
        return self.positions[tp]


def never_stalls(remaining):
    raise AssertionError(f"stalled on {remaining}")


async def read(consumer, tps, **options):
    options.setdefault("timeout", 5)
    options.setdefault("stalled", never_stalls)
    return [(m.partition, m.offset) async for m in read_to_end(consumer, tps, **options)]


async def test_reads_every_partition_to_its_end_offset_across_compaction_gaps() -> None:
    consumer = LogConsumer({A: {0: "a", 1: "b", 5: "c", 6: MARKER}, B: {3: "x"}, C: {}})
    assert sorted(await read(consumer, [A, B, C])) == [(0, 0), (0, 1), (0, 5), (1, 3)]
    assert consumer.assigned == [A, B, C]
    assert C not in consumer.fetched, "an empty partition is not waited for"


async def test_messages_written_since_the_start_are_left_out_unless_past_end() -> None:
    logs = {A: {0: "a", 1: "b"}}
    later = {A: {2: "new"}}
    assert await read(LogConsumer(logs, later), [A]) == [(0, 0), (0, 1)]
    assert await read(LogConsumer(logs, later), [A], past_end=True) == [(0, 0), (0, 1), (0, 2)]


async def test_a_partition_that_makes_no_progress_raises_what_stalled_makes() -> None:
    consumer = LogConsumer({A: {0: "a"}, B: {0: "b"}, C: {0: "c"}}, stuck=[C, A])

    def stalled(remaining):
        return TimeoutError(f"left: {remaining}")

    with pytest.raises(TimeoutError) as caught:
        await read(consumer, [A, B, C], timeout=0.05, stalled=stalled)
    assert str(caught.value) == f"left: {[A, C]}"
