"""Plain Kafka helpers: unique names, a topic of a test's own, a topic's messages decoded."""

from __future__ import annotations

import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deploy.settings import Settings
from deploy.wiring import kafka_connection
from schemas.codec import Codec
from streams.kafka.topic_reader import read_topic


def unique(prefix: str) -> str:
    """A name no other test or earlier run has used, for topics and consumer groups."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create_topic(settings: Settings, name: str, partitions: int = 1) -> None:
    """Create one topic (replication factor 1) on the broker of `settings`."""
    admin = AIOKafkaAdminClient(**kafka_connection(settings).client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def read_all(settings: Settings, topic: str, message: str) -> list[dict]:
    """Every message now in the topic, decoded."""
    codec = Codec.default()
    return [
        codec.decode(message, m.value) for m in await read_topic(kafka_connection(settings), topic)
    ]
