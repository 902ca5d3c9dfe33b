"""Writes what the LMS sent to Kafka, and says so only once Kafka has it (acks=all)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.codec import Codec
from schemas.topics import COURSE_RECIPIENTS, LEARNING_RECORDS, USER_PROFILES, course_key, user_key
from streams.kafka.connection import KafkaConnection
from streams.kafka.errors import KafkaUnavailable

__all__ = ["LmsPublisher"]

log = logging.getLogger(__name__)


class LmsPublisher:
    """Publishes LearningRecords and UserProfiles, keyed by site/user.

    `timeout` is how long a write may wait for Kafka's acknowledgement: the gateway's
    LRX_INGEST_KAFKA_TIMEOUT, or LRX_ADMIN_KAFKA_TIMEOUT for the admin commands.
    """

    def __init__(self, kafka: KafkaConnection, *, timeout: float, codec: Codec | None = None):
        self.codec = codec or Codec.default()
        self.timeout = timeout
        self.producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=int(self.timeout * 1000),
            **kafka.client_options(),
        )
        self._started = False

    async def start(self) -> None:
        await self.producer.start()
        self._started = True

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self.producer.stop()

    async def __aenter__(self) -> LmsPublisher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def publish_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        await self._publish(LEARNING_RECORDS, "LearningRecord", records)

    async def publish_profiles(self, profiles: Iterable[Mapping[str, Any]]) -> None:
        await self._publish(USER_PROFILES, "UserProfile", profiles)

    async def publish_course_recipients(self, value: Mapping[str, Any]) -> None:
        key = course_key(value["site"], value["course_id"])
        await self._send(COURSE_RECIPIENTS, "CourseRecipients", [(key, value)])

    async def _publish(self, topic: str, message: str, values: Iterable[Mapping[str, Any]]) -> None:
        await self._send(topic, message, [(user_key(v["site"], v["user_id"]), v) for v in values])

    async def _send(
        self, topic: str, message: str, keyed: list[tuple[bytes, Mapping[str, Any]]]
    ) -> None:
        # Encode everything first: a bad value must fail before anything is written.
        encoded = [(key, self.codec.encode(message, value)) for key, value in keyed]
        try:
            async with asyncio.timeout(self.timeout):
                futures = [
                    await self.producer.send(topic, value, key=key) for key, value in encoded
                ]
                await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as error:
            log.warning("Kafka did not take %d %s: %r", len(encoded), message, error)
            raise KafkaUnavailable(f"Kafka did not acknowledge the write: {error!r}") from error
