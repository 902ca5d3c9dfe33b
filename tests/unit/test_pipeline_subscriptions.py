"""Unit tests of the subscription reader over a scripted consumer (no Kafka)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

import streams.kafka.topic_reader as topic_snapshot
import streams.worker.subscriptions as subscriptions
from deploy.settings import Settings
from deploy.wiring import kafka_connection
from schemas.topics import COURSE_RECIPIENTS, course_key
from streams.rules.recipients import RecipientDirectory
from streams.rules.routing import Subscription
from streams.worker.observer import PipelineObserver
from tests.support.records import CODEC, SITE, course_recipients

C1 = course_key(SITE, "c1")
STALE = course_key(SITE, "c9")  # unsubscribed, its tombstone compacted away


class ScriptedConsumer:
    """Fails its first read, then serves `messages` once and nothing after."""

    messages: list[SimpleNamespace] = []
    reads = 0  # reads started, over all instances

    def __init__(self, **options: object) -> None:
        self.position_ = 0
        self.failing = ScriptedConsumer.reads == 0
        ScriptedConsumer.reads += 1

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def assign(self, tps: list[TopicPartition]) -> None:
        self.tp = tps[0]

    async def seek_to_beginning(self, *tps: TopicPartition) -> None: ...

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.messages) for tp in tps}

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int
    ) -> dict[TopicPartition, list[SimpleNamespace]]:
        if self.failing:
            raise KafkaConnectionError("broker gone")
        if self.position_ < len(self.messages):
            self.position_ = len(self.messages)
            return {self.tp: self.messages}
        await asyncio.sleep(0.01)  # a poll that finds nothing new
        return {}

    async def position(self, tp: TopicPartition) -> int:
        return self.position_


class CountingObserver(PipelineObserver):
    def __init__(self) -> None:
        self.unreadable_topics: list[str] = []

    def unreadable(self, topic: str) -> None:
        self.unreadable_topics.append(topic)


def message(offset: int, key: bytes, value: bytes | None) -> SimpleNamespace:
    return SimpleNamespace(
        topic=COURSE_RECIPIENTS, partition=0, offset=offset, key=key, value=value
    )


async def test_a_reread_after_a_failure_rebuilds_the_subscriptions_and_reports_bad_values(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def one_partition(kafka: object, topic: str) -> list[int]:
        return [0]

    ScriptedConsumer.reads = 0
    ScriptedConsumer.messages = [
        message(0, C1, CODEC.encode("CourseRecipients", course_recipients("c1", ["CMaRS"]))),
        message(1, course_key(SITE, "c2"), b"not avro"),
    ]
    monkeypatch.setattr(topic_snapshot, "AIOKafkaConsumer", ScriptedConsumer)
    monkeypatch.setattr(topic_snapshot, "partitions_of", one_partition)
    settings = Settings()
    observer = CountingObserver()
    directory = RecipientDirectory.from_settings(settings.recipients, settings.recipient_aliases)
    reader = subscriptions.SubscriptionReader(
        kafka_connection(settings), settings.pipeline_read_timeout, CODEC, directory, observer
    )
    reader.courses = {STALE: Subscription(("cmars",))}
    reader.ready.set()  # as after an earlier read

    task = asyncio.create_task(reader.run(retry_after=0))
    try:
        await asyncio.wait_for(_until_reread(reader), timeout=10)
    finally:
        task.cancel()
    assert dict(reader) == {C1: Subscription(("cmars",))}, "the stale course is gone"
    assert (reader.unreadable, observer.unreadable_topics) == (1, [COURSE_RECIPIENTS])
    assert f"{COURSE_RECIPIENTS}[0]@1 (course {SITE}/c2) cannot be decoded" in caplog.text


async def _until_reread(reader: subscriptions.SubscriptionReader) -> None:
    # The failed first read clears `ready`; the second sets it again once caught up.
    while reader.ready.is_set():
        await asyncio.sleep(0.001)
    await reader.ready.wait()
