"""Course subscriptions: which recipients get a course's learning records, and what it requires.

The state is the compacted topic lrx.course-recipients, one CourseRecipients
value per course (key site/course id). A change reads the course's current
value, builds the next one from it, and publishes the whole value; the topic
is small, so reading it whole is cheap. Both `lrx recipients` and the
gateway's `PUT /v1/courses/{course}/recipients` change subscriptions here.

Recipients are stored as the administrator typed them (`tahsn` stays `tahsn`,
as the contract says), but each must resolve through the alias table, and a
course lists each resolved recipient once: adding `tahsn` to a course that has
`cmars` changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.codec import Codec, CodecError
from schemas.topics import COURSE_RECIPIENTS, course_key, key_part_problem
from streams.kafka.connection import KafkaConnection
from streams.kafka.live_view import LiveView
from streams.kafka.topic_reader import read_compacted_topic
from streams.rules.recipients import RecipientDirectory, UnknownRecipientError

from .problems import InvalidInput, Problem
from .publisher import LmsPublisher

__all__ = [
    "CourseRecipientsView",
    "CourseRecipients",
    "SubscriptionChange",
    "course_recipients",
    "with_recipient",
    "without_recipient",
    "same_subscription",
    "read_course_recipients",
    "publish_course_recipients",
    "change_course_recipients",
]

log = logging.getLogger(__name__)

CourseRecipients = dict[str, Any]  # a decoded CourseRecipients message
MAX_ID_LENGTH = 255


@dataclass(frozen=True)
class SubscriptionChange:
    """A course's value before and after a change; `published` is False for no-ops and dry runs."""

    before: CourseRecipients | None
    after: CourseRecipients
    published: bool

    @property
    def changed(self) -> bool:
        return self.before is None or not same_subscription(self.before, self.after)


def course_recipients(
    site: str,
    course_id: str,
    recipients: Iterable[str],
    required_activities: Iterable[str],
    changed_by: str,
    directory: RecipientDirectory,
    changed_at: datetime,
) -> CourseRecipients:
    """A validated CourseRecipients value; raises InvalidInput listing every problem by path.

    Recipient names must resolve (an unknown one lists the known names); a name
    resolving to a recipient already listed is dropped; activity cmids are kept
    once each, in order.
    """
    problems: list[Problem] = []
    site, course_id, changed_by = (
        _identifier(name, value, problems)
        for name, value in (("site", site), ("course_id", course_id), ("changed_by", changed_by))
    )
    kept: dict[str, str] = {}  # resolved id -> name as typed
    for index, name in enumerate(recipients):
        path = f"recipients[{index}]"
        typed = _identifier(path, name, problems)
        if not typed:
            continue
        try:
            kept.setdefault(directory.resolve(typed), typed)
        except UnknownRecipientError as error:
            problems.append(Problem(path, str(error)))
    activities: dict[str, None] = {}
    for index, cmid in enumerate(required_activities):
        activity = _identifier(f"required_activities[{index}]", cmid, problems)
        if activity:
            activities[activity] = None
    if problems:
        raise InvalidInput(problems)
    return {
        "site": site,
        "course_id": course_id,
        "recipients": list(kept.values()),
        "required_activities": list(activities),
        "changed_by": changed_by,
        "changed_at": changed_at,
    }


def with_recipient(
    current: Mapping[str, Any] | None,
    site: str,
    course_id: str,
    recipient: str,
    required_activities: Sequence[str] | None,
    changed_by: str,
    directory: RecipientDirectory,
    changed_at: datetime,
) -> CourseRecipients:
    """The course's value with `recipient` added; `required_activities`, when given, replace the
    course's list, otherwise it is kept."""
    try:
        directory.resolve(recipient)
    except UnknownRecipientError as error:
        raise InvalidInput([Problem("recipient", str(error))]) from None
    names = [*(current["recipients"] if current else ()), recipient]
    if required_activities is None:
        required_activities = current["required_activities"] if current else ()
    return course_recipients(
        site, course_id, names, required_activities, changed_by, directory, changed_at
    )


def without_recipient(
    current: Mapping[str, Any] | None,
    site: str,
    course_id: str,
    recipient: str,
    changed_by: str,
    directory: RecipientDirectory,
    changed_at: datetime,
) -> CourseRecipients:
    """The course's value without `recipient` (or any alias of it); InvalidInput if absent.

    A name no longer configured (a recipient since dropped from LRX_RECIPIENTS)
    can still be removed by that name. The last recipient's removal leaves an
    empty list, not a tombstone, so the topic still says who unsubscribed the
    course and when.
    """
    problems: list[Problem] = []
    changed_by = _identifier("changed_by", changed_by, problems)
    resolved = _resolves_to(directory, recipient)
    typed = recipient.strip().lower()
    listed = list(current["recipients"]) if current else []
    remaining = [
        name
        for name in listed
        if name.strip().lower() != typed
        and (resolved is None or _resolves_to(directory, name) != resolved)
    ]
    if len(remaining) == len(listed):
        if resolved is None:
            message = str(UnknownRecipientError(recipient, directory.known_names()))
        else:
            message = (
                f"course {course_id} of site {site} does not subscribe {resolved} "
                f"(its recipients: {', '.join(listed) or 'none'})"
            )
        problems.append(Problem("recipient", message))
    if problems or current is None:
        raise InvalidInput(problems)
    return {**current, "recipients": remaining, "changed_by": changed_by, "changed_at": changed_at}


def same_subscription(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two values subscribe the same names and require the same activities."""
    return (a["recipients"], a["required_activities"]) == (
        b["recipients"],
        b["required_activities"],
    )


async def read_course_recipients(
    kafka: KafkaConnection, timeout: float, codec: Codec, site: str | None = None
) -> dict[tuple[str, str], CourseRecipients]:
    """(site, course id) -> current value, read from lrx.course-recipients whole.

    A value that does not decode is skipped with a warning naming where it is:
    the worker, which reads the same topic, reports it too.
    """
    prefix = course_key(site, "") if site is not None else b""
    latest = await read_compacted_topic(
        kafka,
        COURSE_RECIPIENTS,
        timeout=timeout,
        key_prefix=prefix,
    )
    courses: dict[tuple[str, str], CourseRecipients] = {}
    for key, found in latest.items():
        value = _decoded(codec, key, found.value, found.partition, found.offset)
        if value is not None:
            courses[(value["site"], value["course_id"])] = value
    return courses


def _decoded(
    codec: Codec, key: bytes, value: bytes, partition: int, offset: int
) -> CourseRecipients | None:
    """The value as a CourseRecipients, or None (with a warning naming where it is)."""
    try:
        return codec.decode("CourseRecipients", value)
    except CodecError as error:
        log.warning(
            "%s[%d]@%d (key %r) is not a CourseRecipients, skipped: %s",
            COURSE_RECIPIENTS,
            partition,
            offset,
            key,
            error,
        )
        return None


async def publish_course_recipients(
    kafka: KafkaConnection, timeout: float, codec: Codec, value: Mapping[str, Any]
) -> None:
    """Write one course's value, returning once Kafka acknowledged it (acks=all)."""
    async with LmsPublisher(kafka, timeout=timeout, codec=codec) as publisher:
        await publisher.publish_course_recipients(value)
    log.info(
        "course %s/%s now subscribes %s",
        value["site"],
        value["course_id"],
        ", ".join(value["recipients"]) or "no recipient",
    )


async def change_course_recipients(
    kafka: KafkaConnection,
    timeout: float,
    codec: Codec,
    site: str,
    course_id: str,
    change: Callable[[CourseRecipients | None], CourseRecipients],
    *,
    dry_run: bool = False,
    publish: Callable[[CourseRecipients], Awaitable[None]] | None = None,
) -> SubscriptionChange:
    """Read the course's current value, apply `change` to it, and publish the result.

    Nothing is published when the result subscribes and requires the same as
    before, or on a dry run. Two changes to one course at the same instant can
    race (the last write wins); admins change subscriptions rarely, so no lock.
    """
    courses = await read_course_recipients(kafka, timeout, codec, site)
    before = courses.get((site, course_id))
    after = change(before)
    update = SubscriptionChange(before, after, published=False)
    if dry_run or not update.changed:
        return update
    if publish is None:
        await publish_course_recipients(kafka, timeout, codec, after)
    else:
        await publish(after)  # a long-running process's own producer (the gateway's)
    return SubscriptionChange(before, after, published=True)


def _identifier(path: str, value: object, problems: list[Problem]) -> str:
    if not isinstance(value, str):
        problems.append(Problem(path, "must be a string"))
        return ""
    text = value.strip()
    if not text:
        problems.append(Problem(path, "must not be empty"))
    elif len(text) > MAX_ID_LENGTH:
        problems.append(Problem(path, f"longer than {MAX_ID_LENGTH} characters"))
        return ""
    elif problem := key_part_problem(text):
        problems.append(Problem(path, problem))
        return ""
    return text


def _resolves_to(directory: RecipientDirectory, name: str) -> str | None:
    try:
        return directory.resolve(name)
    except UnknownRecipientError:
        return None  # a recipient since removed from LRX_RECIPIENTS: only its own name matches


class CourseRecipientsView:
    """Every course's current subscription, read once and then followed live (LiveView).

    A long-running process (the gateway) keeps one, so that a change compares with
    the current value without reading the whole topic again on every request.
    """

    def __init__(
        self, kafka: KafkaConnection, timeout: float, codec: Codec, retry_after: float = 5.0
    ) -> None:
        def entry(message: Any) -> tuple[bytes, CourseRecipients | None] | None:
            key = message.key or b""
            if message.value is None:
                return key, None
            value = _decoded(codec, key, message.value, message.partition, message.offset)
            return (key, value) if value is not None else None

        self.view: LiveView[CourseRecipients] = LiveView(
            kafka, COURSE_RECIPIENTS, entry, timeout, retry_after
        )

    async def current(self, site: str, course_id: str) -> CourseRecipients | None:
        """The course's value now; KafkaUnavailable if the topic cannot be read in time."""
        return (await self.view.current()).get(course_key(site, course_id))

    def remember(self, value: CourseRecipients) -> None:
        """A value this process wrote and Kafka acknowledged: in force before it reads it back."""
        self.view.remember(course_key(value["site"], value["course_id"]), value)

    async def close(self) -> None:
        await self.view.close()
