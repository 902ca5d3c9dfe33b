"""The worker's consumer seeks never-committed partitions back to their beginning.

Faust drops records fetched while its flow is stopped (rebalance, table
recovery) and seeks back to the committed offsets to fetch them again;
aiokafka's seek leaves a partition without a committed offset where it is, so
those records were skipped (see streams/worker/faust_transport.py).
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy.wiring import kafka_connection, pipeline_app
from streams.worker.faust_transport import FaustApp, seek_to_committed_or_beginning
from tests.support.kafka import create_topic

pytestmark = pytest.mark.kafka


async def _topic_read_to_end(settings, topic: str, group: str) -> AIOKafkaConsumer:
    """A consumer in `group` assigned both partitions of `topic`, positioned at their end
    (5 records each), having committed offset 3 of partition 0 only."""
    await create_topic(settings, topic, partitions=2)
    producer = AIOKafkaProducer(acks="all", **kafka_connection(settings).client_options())
    await producer.start()
    try:
        for partition in (0, 1):
            for n in range(5):
                await producer.send_and_wait(topic, b"%d" % n, partition=partition)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_connection(settings).client_options(),
    )
    await consumer.start()
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    consumer.assign(tps)
    read = 0
    while read < 10:
        batch = await consumer.getmany(timeout_ms=10_000)
        assert batch, f"no records within 10s after {read} of 10"
        read += sum(len(records) for records in batch.values())
    await consumer.commit({tps[0]: 3})
    return consumer


async def test_a_partition_without_a_committed_offset_goes_back_to_its_beginning(
    settings, unique_name
):
    topic = unique_name("seek")
    consumer = await _topic_read_to_end(settings, topic, unique_name("seek-group"))
    committed, never = TopicPartition(topic, 0), TopicPartition(topic, 1)
    try:
        # aiokafka alone: the never-committed partition stays at its end (the defect).
        await consumer.seek_to_committed()
        assert (await consumer.position(committed), await consumer.position(never)) == (3, 5)

        offsets = await seek_to_committed_or_beginning(consumer)
        assert offsets == {committed: 3, never: None}
        assert (await consumer.position(committed), await consumer.position(never)) == (3, 0)
    finally:
        await consumer.stop()


async def test_partitions_positioned_elsewhere_are_left_alone(settings, unique_name):
    topic = unique_name("seek-changelog")
    consumer = await _topic_read_to_end(settings, topic, unique_name("seek-changelog-group"))
    never = TopicPartition(topic, 1)
    try:
        await seek_to_committed_or_beginning(consumer, lambda tp: tp == never)
        assert await consumer.position(never) == 5
    finally:
        await consumer.stop()


def test_the_worker_runs_on_the_fixed_consumer(settings, tmp_path):
    app = pipeline_app(settings.replace(run_dir=tmp_path)).app
    assert isinstance(app, FaustApp)
    assert (
        app.transport.Consumer._new_consumer_thread.__module__ == "streams.worker.faust_transport"
    )
