"""Course subscriptions: every worker reads lrx.course-recipients whole, and keeps reading.

Every partition of learning records may name any course, so each worker needs
all subscriptions. A plain consumer outside the group reads the compacted topic
from the beginning rather than a Faust GlobalTable, whose recovery has open
issues in faust-streaming; `ready` is set once it has caught up with the end
offsets seen at start, and the pipeline waits for it before its first decision.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from deploy.settings import Settings
from schemas.codec import Codec, CodecError
from schemas.topics import COURSE_RECIPIENTS
from streams.recipients import RecipientDirectory
from streams.routing import Subscription

__all__ = ["SubscriptionReader"]

log = logging.getLogger(__name__)


class SubscriptionReader(Mapping[bytes, Subscription]):
    """A live mapping of course key to Subscription, fed by lrx.course-recipients."""

    def __init__(self, settings: Settings, codec: Codec, directory: RecipientDirectory) -> None:
        self.settings = settings
        self.codec = codec
        self.directory = directory
        self.courses: dict[bytes, Subscription] = {}
        self.ready = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    def __getitem__(self, key: bytes) -> Subscription:
        return self.courses[key]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.courses)

    def __len__(self) -> int:
        return len(self.courses)

    async def run(self, retry_after: float = 5.0) -> None:
        """Read the topic until cancelled; a failure restarts the read after `retry_after`."""
        while True:
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading %s failed; retrying in %ss", COURSE_RECIPIENTS, retry_after)
                await asyncio.sleep(retry_after)

    async def _read(self) -> None:
        consumer = AIOKafkaConsumer(
            **self.settings.kafka_client_options(),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        self._consumer = consumer
        await consumer.start()
        try:
            partitions = await partitions_of(self.settings, COURSE_RECIPIENTS)
            tps = [TopicPartition(COURSE_RECIPIENTS, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for message in messages:
                        self._apply(message)
                if not self.ready.is_set() and await _caught_up(consumer, ends):
                    log.info("course subscriptions read: %s courses", len(self.courses))
                    self.ready.set()
        finally:
            self._consumer = None
            await consumer.stop()

    def _apply(self, message: Any) -> None:
        key: bytes | None = message.key
        if key is None:
            log.warning("%s@%s has no key, ignored", COURSE_RECIPIENTS, message.offset)
            return
        if message.value is None:
            self.courses.pop(key, None)
            return
        try:
            value = self.codec.decode("CourseRecipients", message.value)
        except CodecError as error:
            log.error(
                "%s[%s]@%s (course %s) cannot be read, subscription unchanged: %s",
                COURSE_RECIPIENTS,
                message.partition,
                message.offset,
                key.decode(errors="replace"),
                error,
            )
            return
        subscription = Subscription.of_course_recipients(value, self.directory)
        if subscription.unknown_recipients:
            log.error(
                "course %s lists unknown recipient(s) %s; known: %s",
                key.decode(errors="replace"),
                ", ".join(subscription.unknown_recipients),
                ", ".join(self.directory.known_names()),
            )
        self.courses[key] = subscription


async def partitions_of(settings: Settings, topic: str) -> list[int]:
    """The partition numbers of an existing topic."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [
        p["partition"] for d in described if d["error_code"] == 0 for p in d["partitions"]
    ]
    if not partitions:
        raise RuntimeError(f"topic {topic} does not exist; run `lrx topics create`")
    return sorted(partitions)


async def _caught_up(consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True
