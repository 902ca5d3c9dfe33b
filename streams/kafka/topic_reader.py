"""Reading a topic whole, as of now: every message, or the latest value of every key.

The admin commands (`lrx users import`, `lrx recipients`) need the current state
of a small keyed topic before they change it; `lrx demo`, `lrx trace` and the
tests need every outcome written so far. The worker reads its decision log
(streams/worker/decision_log.py) and the course subscriptions (streams/worker/subscriptions.py)
the same way with consumers of its own, through `read_to_end`. A consumer without
a group reads every partition from its start up to the end offset it found when
it began, so the read always finishes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError, for_code

from streams.kafka.connection import KafkaConnection
from streams.kafka.errors import KafkaStalled, KafkaUnavailable, TopicMissing

__all__ = [
    "KafkaUnavailable",
    "TopicMissing",
    "KafkaStalled",
    "LatestValue",
    "partitions_of",
    "reading_consumer",
    "read_compacted_topic",
    "read_to_end",
    "read_topic",
    "follow_topic",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatestValue:
    """The newest value of one key, with where it was read (for error messages)."""

    value: bytes
    partition: int
    offset: int


async def read_compacted_topic(
    kafka: KafkaConnection, topic: str, *, timeout: float = 30.0, key_prefix: bytes = b""
) -> dict[bytes, LatestValue]:
    """Key -> latest value of `topic`, tombstoned keys left out.

    Only keys starting with `key_prefix` are kept (e.g. b"site/" for one site),
    so that callers decode no more than they need. Raises TopicMissing, or
    KafkaUnavailable (KafkaStalled when reading stops making progress).
    """
    latest: dict[bytes, LatestValue] = {}
    for message in await read_topic(kafka, topic, timeout=timeout, key_prefix=key_prefix):
        key = message.key or b""
        if message.value is None:
            latest.pop(key, None)
        else:
            latest[key] = LatestValue(message.value, message.partition, message.offset)
    log.debug("read %s whole: %d live keys", topic, len(latest))
    return latest


async def read_topic(
    kafka: KafkaConnection, topic: str, *, timeout: float = 30.0, key_prefix: bytes = b""
) -> list[ConsumerRecord]:
    """Every message of `topic` up to its end offsets as of the call, partition by partition.

    KafkaStalled when reading makes no progress for `timeout` seconds (the caller's
    setting, usually LRX_ADMIN_KAFKA_TIMEOUT).
    """

    def stalled(remaining: list[TopicPartition]) -> KafkaStalled:
        return KafkaStalled(
            f"reading {topic} made no progress for {timeout:g}s "
            f"(LRX_ADMIN_KAFKA_TIMEOUT); partitions left: "
            f"{', '.join(str(tp.partition) for tp in remaining)}"
        )

    try:
        partitions = await partitions_of(kafka, topic)
        consumer = reading_consumer(kafka, timeout)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in partitions]
            return [
                message
                async for message in read_to_end(consumer, tps, timeout=timeout, stalled=stalled)
                if (message.key or b"").startswith(key_prefix)
            ]
        finally:
            await consumer.stop()
    except KafkaError as error:
        raise KafkaUnavailable(
            f"reading {topic} from {kafka.bootstrap_servers} failed: {error!r}"
        ) from error


def reading_consumer(kafka: KafkaConnection, timeout: float, **options: Any) -> AIOKafkaConsumer:
    """A consumer for read_to_end: in no group, from the earliest offset, committing nothing.

    Its requests may take `timeout` seconds and some, so that a slow broker stalls
    the read (read_to_end says so) rather than failing a single request.
    """
    return AIOKafkaConsumer(
        **kafka.client_options(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(timeout * 1000) + 5000,
        **options,
    )


async def partitions_of(kafka: KafkaConnection, topic: str) -> list[int]:
    """The partition numbers of an existing topic; TopicMissing if there is no such topic."""
    # A consumer only knows the partitions of topics it subscribed to; the admin
    # client asks for one topic's metadata.
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        (found,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if found["error_code"] == UnknownTopicOrPartitionError.errno:
        raise TopicMissing(
            f"topic {topic} does not exist on {kafka.bootstrap_servers}; "
            "create the topics with `lrx topics create`"
        )
    if found["error_code"]:
        raise for_code(found["error_code"])(f"describing topic {topic}")
    return sorted(p["partition"] for p in found["partitions"])


async def read_to_end(
    consumer: AIOKafkaConsumer,
    partitions: Iterable[TopicPartition],
    *,
    timeout: float,
    stalled: Callable[[list[TopicPartition]], Exception],
    past_end: bool = False,
) -> AsyncIterator[ConsumerRecord]:
    """The messages of `partitions` from their beginning to the end offsets they have now.

    Assigns the partitions to `consumer`, a consumer outside any group. The fetch
    that reaches an end may bring messages written since the read began: they are
    left out unless `past_end`. Raises stalled(partitions left, sorted) when no
    message arrives for `timeout` seconds before every end is reached.
    """
    tps = list(partitions)
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    remaining = {tp for tp in tps if ends[tp] > 0}
    last_progress = time.monotonic()
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=500)
        for tp, messages in batches.items():
            for message in messages:
                if message.offset >= ends[tp] and not past_end:
                    break  # written after we started: not part of "now"
                yield message
        if batches:
            last_progress = time.monotonic()
        # Position, not the last offset seen: compaction and transaction markers leave gaps.
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
        if remaining and time.monotonic() - last_progress > timeout:
            raise stalled(sorted(remaining))


async def follow_topic(
    kafka: KafkaConnection,
    topic: str,
    *,
    timeout: float,
    caught_up: Callable[[], None],
) -> AsyncIterator[ConsumerRecord]:
    """Every message of `topic` from its start, then each new one as it comes, until cancelled.

    `caught_up()` is called once the end offsets found at the start are reached.
    Raises KafkaStalled if that first read makes no progress for `timeout` seconds.
    """

    def stalled(remaining: list[TopicPartition]) -> KafkaStalled:
        return KafkaStalled(f"reading {topic} made no progress for {timeout:g}s")

    consumer = reading_consumer(kafka, timeout)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
        async for message in read_to_end(
            consumer, tps, timeout=timeout, stalled=stalled, past_end=True
        ):
            yield message
        caught_up()
        while True:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for message in messages:
                    yield message
    finally:
        await consumer.stop()
