"""Plain Kafka helpers for tests that need a topic of their own."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deploy.settings import Settings
from deploy.wiring import kafka_connection


async def create_topic(settings: Settings, name: str, partitions: int = 1) -> None:
    """Create one topic (replication factor 1) on the broker of `settings`."""
    admin = AIOKafkaAdminClient(**kafka_connection(settings).client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
