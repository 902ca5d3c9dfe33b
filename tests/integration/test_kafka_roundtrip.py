"""A round trip through the real broker with aiokafka, and resuming at the committed offset."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy.wiring import kafka_connection
from tests.support.kafka import create_topic

pytestmark = pytest.mark.kafka


async def _consume(settings, topic: str, group: str, count: int) -> list[bytes]:
    """Read `count` messages as `group`, commit exactly what was read, and leave."""
    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_connection(settings).client_options(),
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        last = None
        while len(values) < count:
            batch = await consumer.getmany(timeout_ms=10_000, max_records=count - len(values))
            assert batch, f"no message within 10s after {len(values)} of {count}"
            for messages in batch.values():
                for message in messages:
                    values.append(message.value)
                    last = message
        tp = TopicPartition(topic, 0)
        await consumer.commit({tp: last.offset + 1})
        return values
    finally:
        await consumer.stop()


async def test_consumer_resumes_at_committed_offset(settings, unique_name):
    topic, group = unique_name("roundtrip"), unique_name("roundtrip-group")
    await create_topic(settings, topic)
    producer = AIOKafkaProducer(acks="all", **kafka_connection(settings).client_options())
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, f"message {i}".encode(), key=b"k")
    finally:
        await producer.stop()

    first = await _consume(settings, topic, group, 4)
    assert first == [f"message {i}".encode() for i in range(4)]

    # A new consumer in the same group starts where the first one committed.
    rest = await _consume(settings, topic, group, 6)
    assert rest == [f"message {i}".encode() for i in range(4, 10)]
