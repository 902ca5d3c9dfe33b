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

from schemas.codec import Codec, CodecError
from schemas.topics import COURSE_RECIPIENTS
from streams.kafka.connection import KafkaConnection
from streams.kafka.topic_reader import follow_topic
from streams.rules.recipients import RecipientDirectory
from streams.rules.routing import Subscription
from streams.worker.observer import PipelineObserver

__all__ = ["SubscriptionReader"]

log = logging.getLogger(__name__)


class SubscriptionReader(Mapping[bytes, Subscription]):
    """A live mapping of course key to Subscription, fed by lrx.course-recipients.

    Each read (the first, and every one after a failure) builds a new mapping from
    the start of the topic and swaps it in once caught up, so a course unsubscribed
    meanwhile (its tombstone perhaps compacted away) is not kept; until then `ready`
    is clear and the pipeline waits rather than decide on a stale mapping.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        timeout: float,
        codec: Codec,
        directory: RecipientDirectory,
        observer: PipelineObserver | None = None,
    ) -> None:
        self.kafka = kafka
        self.timeout = timeout
        self.codec = codec
        self.directory = directory
        self.observer = observer or PipelineObserver()
        self.courses: dict[bytes, Subscription] = {}
        self.ready = asyncio.Event()
        self.unreadable = 0  # values that could not be decoded, since start

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
                self.ready.clear()
                log.exception(
                    "reading %s failed; the pipeline waits, retrying in %ss",
                    COURSE_RECIPIENTS,
                    retry_after,
                )
                await asyncio.sleep(retry_after)

    async def _read(self) -> None:
        courses: dict[bytes, Subscription] = {}

        def caught_up() -> None:
            # From now on, changes go straight into the live mapping.
            self.courses = courses
            log.info("course subscriptions read: %s courses", len(courses))
            self.ready.set()

        # Changes written since the read began count too: reading goes on after them.
        async for message in follow_topic(
            self.kafka, COURSE_RECIPIENTS, timeout=self.timeout, caught_up=caught_up
        ):
            self._apply(courses, message)

    def _apply(self, courses: dict[bytes, Subscription], message: Any) -> None:
        where = f"{COURSE_RECIPIENTS}[{message.partition}]@{message.offset}"
        key: bytes | None = message.key
        if key is None:
            log.error("%s has no key (a course), ignored", where)
            self._count_unreadable()
            return
        if message.value is None:
            courses.pop(key, None)
            return
        try:
            value = self.codec.decode("CourseRecipients", message.value)
        except CodecError as error:
            log.error(
                "%s (course %s) cannot be decoded, its earlier subscription stays in force: %s",
                where,
                key.decode(errors="replace"),
                error,
            )
            self._count_unreadable()
            return
        subscription = Subscription.of_course_recipients(value, self.directory)
        if subscription.unknown_recipients:
            log.error(
                "course %s lists unknown recipient(s) %s; known: %s",
                key.decode(errors="replace"),
                ", ".join(subscription.unknown_recipients),
                ", ".join(self.directory.known_names()),
            )
        courses[key] = subscription

    def _count_unreadable(self) -> None:
        self.unreadable += 1
        self.observer.unreadable(COURSE_RECIPIENTS)
