"""Reading a topic whole, as of now: every message, or the latest value of every key.

The admin commands (`lrx users import`, `lrx recipients`) need the current state
of a small keyed topic before they change it; `lrx demo` and the tests need every
outcome written so far. A consumer without a group reads every partition from
its start up to the end offset it found when it began, so the read always finishes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError, for_code

from connectors.lms.publisher import KafkaUnavailable
from deploy.settings import Settings

__all__ = ["LatestValue", "TopicMissing", "KafkaStalled", "read_compacted_topic", "read_topic"]

log = logging.getLogger(__name__)


class TopicMissing(KafkaUnavailable):
    """The topic does not exist on the cluster: it is not ready for lrx (`lrx topics create`)."""


class KafkaStalled(KafkaUnavailable):
    """Reading made no progress for LRX_ADMIN_KAFKA_TIMEOUT seconds."""


@dataclass(frozen=True)
class LatestValue:
    """The newest value of one key, with where it was read (for error messages)."""

    value: bytes
    partition: int
    offset: int


async def read_compacted_topic(
    settings: Settings, topic: str, *, key_prefix: bytes = b""
) -> dict[bytes, LatestValue]:
    """Key -> latest value of `topic`, tombstoned keys left out.

    Only keys starting with `key_prefix` are kept (e.g. b"site/" for one site),
    so that callers decode no more than they need. Raises TopicMissing, or
    KafkaUnavailable (KafkaStalled when reading stops making progress).
    """
    latest: dict[bytes, LatestValue] = {}
    for message in await read_topic(settings, topic, key_prefix=key_prefix):
        key = message.key or b""
        if message.value is None:
            latest.pop(key, None)
        else:
            latest[key] = LatestValue(message.value, message.partition, message.offset)
    log.debug("read %s whole: %d live keys", topic, len(latest))
    return latest


async def read_topic(
    settings: Settings, topic: str, *, key_prefix: bytes = b""
) -> list[ConsumerRecord]:
    """Every message of `topic` up to its end offsets as of the call, partition by partition."""
    try:
        partitions = await _partitions_of(settings, topic)
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=int(settings.admin_kafka_timeout * 1000) + 5000,
            **settings.kafka_client_options(),
        )
        await consumer.start()
        try:
            return await _read_to_end(consumer, settings, topic, partitions, key_prefix)
        finally:
            await consumer.stop()
    except KafkaError as error:
        raise KafkaUnavailable(
            f"reading {topic} from {settings.bootstrap_servers} failed: {error!r}"
        ) from error


async def _partitions_of(settings: Settings, topic: str) -> list[int]:
    # A consumer only knows the partitions of topics it subscribed to; the admin
    # client asks for one topic's metadata.
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        (found,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if found["error_code"] == UnknownTopicOrPartitionError.errno:
        raise TopicMissing(
            f"topic {topic} does not exist on {settings.bootstrap_servers}; "
            "create the topics with `lrx topics create`"
        )
    if found["error_code"]:
        raise for_code(found["error_code"])(f"describing topic {topic}")
    return sorted(p["partition"] for p in found["partitions"])


async def _read_to_end(
    consumer: AIOKafkaConsumer,
    settings: Settings,
    topic: str,
    partitions: list[int],
    key_prefix: bytes,
) -> list[ConsumerRecord]:
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    remaining = {tp for tp in tps if ends[tp] > 0}
    found: list[ConsumerRecord] = []
    last_progress = time.monotonic()
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=500)
        for tp, messages in batches.items():
            for message in messages:
                if message.offset >= ends[tp]:
                    break  # written after we started: not part of "now"
                if (message.key or b"").startswith(key_prefix):
                    found.append(message)
        if batches:
            last_progress = time.monotonic()
        # Position, not the last offset seen: compaction and transaction markers leave gaps.
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
        if remaining and time.monotonic() - last_progress > settings.admin_kafka_timeout:
            raise KafkaStalled(
                f"reading {topic} made no progress for {settings.admin_kafka_timeout:g}s "
                f"(LRX_ADMIN_KAFKA_TIMEOUT); partitions left: "
                f"{', '.join(str(tp.partition) for tp in sorted(remaining))}"
            )
    return found
