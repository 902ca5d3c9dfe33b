"""The topic catalogue: the one definition of every topic lrx reads or writes.

A topic is a contract like a schema: its name, its key, what its values carry
and how long Kafka keeps them. `lrx topics create` applies this catalogue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Topic",
    "catalogue",
    "outbox_topic",
    "dlq_topic",
    "user_key",
    "course_key",
    "record_key",
    "key_part_problem",
    "DAY_MS",
]

DAY_MS = 24 * 60 * 60 * 1000

# Replay and backfill read learning records back, so they outlive two reporting
# periods (two fiscal years) with a month to spare.
RECORD_RETENTION_MS = (2 * 366 + 31) * DAY_MS
# An outbox must outlast any CMaRS outage or expired credential we would tolerate.
OUTBOX_RETENTION_MS = 60 * DAY_MS
AUDIT_RETENTION_MS = 400 * DAY_MS

LEARNING_RECORDS = "lms.learning-records"
USER_PROFILES = "lms.user-profiles"
COURSE_RECIPIENTS = "lrx.course-recipients"
INELIGIBLE = "lrx.ineligible"
PENDING = "lrx.pending"
DELIVERY_RECEIPTS = "lrx.delivery-receipts"
# Input the stream processor cannot read or handle (streams/worker/app.py), with its exact bytes.
PIPELINE_DEAD_LETTERS = "lrx.dlq.pipeline"
# The stream processor writes its outputs (outbox, ineligible, pending) to the
# partition of the input record's user, not by hash of their key, so that a worker
# can read back the decisions of the partitions it owns (streams/worker/decision_log.py).


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key: str
    value: str
    doc: str
    compacted: bool = False
    retention_ms: int | None = None  # None: Kafka keeps compacted topics' latest values forever

    def configs(self) -> dict[str, str]:
        """The topic-level configs that must hold on the broker."""
        if self.compacted:
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms)}


# Keys are plain UTF-8 so that any tool can read them. A Moodle user id is unique
# only within its site, so a user's key is site plus user id; streams keyed this
# way are co-partitioned with the users table.
KEY_SEPARATOR = "/"


def key_part_problem(value: str) -> str | None:
    """Why a site, user or course id cannot be part of a key (None if it can).

    With the separator inside an id, site "a/b" + user "c" and site "a" + user
    "b/c" would share one key, one users-table entry and one OCI ID.
    """
    if KEY_SEPARATOR in value:
        return f"must not contain {KEY_SEPARATOR!r}: lrx joins ids with it in Kafka keys"
    return None


def user_key(site: str, user_id: str) -> bytes:
    return f"{site}{KEY_SEPARATOR}{user_id}".encode()


def course_key(site: str, course_id: str) -> bytes:
    return f"{site}{KEY_SEPARATOR}{course_id}".encode()


def record_key(recipient: str, record_id: str) -> bytes:
    return f"{recipient}{KEY_SEPARATOR}{record_id}".encode()


def outbox_topic(recipient: str) -> str:
    return f"lrx.outbox.{recipient}"


def dlq_topic(recipient: str) -> str:
    return f"lrx.dlq.{recipient}"


def catalogue(partitions: int, recipients: Iterable[str]) -> list[Topic]:
    """Every topic, given the keyed-topic partition count and the recipient ids."""
    topics = [
        Topic(
            LEARNING_RECORDS, partitions, "site/user", "LearningRecord",
            "Completions published by the LMS (gateway, lrx publish).",
            retention_ms=RECORD_RETENTION_MS,
        ),
        Topic(
            USER_PROFILES, partitions, "site/user", "UserProfile",
            "Latest profile of each user, with the raw OCI ID field.",
            compacted=True,
        ),
        Topic(
            COURSE_RECIPIENTS, 1, "site/course", "CourseRecipients",
            "Recipients and required activities of each course; every worker reads it whole.",
            compacted=True,
        ),
        Topic(
            INELIGIBLE, partitions, "record id", "IneligibleRecord",
            "Records that will not be sent, each with its reason code.",
            retention_ms=RECORD_RETENTION_MS,
        ),
        Topic(
            PENDING, partitions, "record id", "LearningRecord",
            "Records held until their user has a valid OCI ID; a tombstone releases one.",
            compacted=True,
        ),
        # Partitioned by the outbox, not by its key: a sink writes each receipt to the
        # partition number of the outbox record it settles (connectors/cmars/sink.py),
        # which spares it murmur2 per receipt. Compaction still keeps one receipt per key,
        # since every copy of a record comes from one outbox partition (record ids derive
        # from the user, the outbox's key). A reader must not look a key up by hashing it.
        Topic(
            DELIVERY_RECEIPTS, partitions, "recipient/record id", "DeliveryReceipt",
            "The ledger: what each recipient accepted, when, in which batch; each receipt "
            "in the partition of the outbox record it settles.",
            compacted=True,
        ),
        Topic(
            PIPELINE_DEAD_LETTERS, 1, "site/user", "DeadLetter",
            "Input the stream processor could not read or handle, with the reason.",
            retention_ms=AUDIT_RETENTION_MS,
        ),
    ]  # fmt: skip
    for recipient in recipients:
        topics.append(
            Topic(
                outbox_topic(recipient), partitions, "site/user", "RoutedRecord",
                f"Eligible records waiting for the {recipient} sink.",
                retention_ms=OUTBOX_RETENTION_MS,
            )
        )  # fmt: skip
        topics.append(
            Topic(
                dlq_topic(recipient), 1, "record id", "DeadLetter",
                f"Records {recipient} rejected or that retrying could not deliver.",
                retention_ms=AUDIT_RETENTION_MS,
            )
        )  # fmt: skip
    return topics
