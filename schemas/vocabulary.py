"""The enumerations shared by the Avro contracts and the domain rules.

Each one mirrors an Avro enum of the same name; tests/unit/test_schemas checks that
the symbols agree, so the codes written to Kafka and the codes in Python are one list.
The groupings of their values that the rules, the record id and the CMaRS contract
share are defined here, once.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "Source",
    "CompletionState",
    "ReasonCode",
    "DeadLetterReason",
    "COURSE_SOURCES",
    "ACTIVITY_SOURCES",
    "SENT_SOURCES",
    "NEVER_SENT_SOURCES",
    "DONE_STATES",
]


class Source(StrEnum):
    """Where a learning record came from."""

    COURSE_COMPLETION = "course_completion"  # Moodle \\core\\event\\course_completed
    ACTIVITY_COMPLETION = "activity_completion"  # \\core\\event\\course_module_completion_updated
    XAPI = "xapi"  # an xAPI statement with the verb "completed"
    SUPPORTING_DOCUMENTATION = "supporting_documentation"  # proof of a course done elsewhere
    CSV_UPLOAD = "csv_upload"
    EQUIVALENCY = "equivalency"
    ADMIN_UPLOAD = "admin_upload"
    LEGACY = "legacy"


# Every source is in exactly one of COURSE_SOURCES, ACTIVITY_SOURCES and NEVER_SENT_SOURCES.
COURSE_SOURCES = frozenset({Source.COURSE_COMPLETION, Source.XAPI})
# An activity of a course (supporting documentation is one of its own): the record names it.
ACTIVITY_SOURCES = frozenset({Source.ACTIVITY_COMPLETION, Source.SUPPORTING_DOCUMENTATION})
# The sources CMaRS takes (its contract's enum); the others prove nothing it counts.
SENT_SOURCES = COURSE_SOURCES | ACTIVITY_SOURCES
NEVER_SENT_SOURCES = frozenset(
    {Source.CSV_UPLOAD, Source.EQUIVALENCY, Source.ADMIN_UPLOAD, Source.LEGACY}
)


class CompletionState(StrEnum):
    """Moodle's completionstate: 0 incomplete, 1 complete, 2 complete-pass, 3 complete-fail."""

    INCOMPLETE = "incomplete"
    COMPLETE = "complete"
    COMPLETE_PASS = "complete_pass"
    COMPLETE_FAIL = "complete_fail"


# The states of a completion that counts: not incomplete, not failed.
DONE_STATES = frozenset({CompletionState.COMPLETE, CompletionState.COMPLETE_PASS})


class ReasonCode(StrEnum):
    """Why a learning record is not sent to a recipient. Every ineligible record has one."""

    SOURCE_NOT_SENT = "source_not_sent"  # legacy, CSV upload, equivalency, admin upload
    NOT_COMPLETE = "not_complete"  # incomplete attempt, or xAPI result.completion false
    FAILED = "failed"  # complete-fail
    VOIDED = "voided"
    EXPIRED = "expired"  # the record's expiry is before its completion or now
    OUTSIDE_PERIOD = "outside_period"  # completed before the current reporting period
    REQUIRED_ACTIVITY_MISSING = "required_activity_missing"
    NO_OCI_ID = "no_oci_id"  # the user's profile has no OCI ID (or no profile arrived)
    INVALID_OCI_ID = "invalid_oci_id"  # the OCI ID field cannot be parsed
    COLLEGE_NOT_ENABLED = "college_not_enabled"  # a known college CMaRS does not support: WS400
    NO_RECIPIENT = "no_recipient"  # the course subscribes no recipient
    USER_DELETED = "user_deleted"  # the LMS deleted the user


class DeadLetterReason(StrEnum):
    """Why lrx dead-lettered a message (DeadLetter.reason_code, header lrx.errors.reason.code).

    Not an Avro enum: reason_code also carries a recipient's own code as it came
    (CMaRS's WS400, WS401), which lrx does not choose.
    """

    # The worker, on lms.learning-records and lms.user-profiles (lrx.dlq.pipeline). The
    # first five are the codec's kinds (schemas/codec CodecError.KINDS).
    BAD_MARKER = "bad_marker"  # not single-object Avro
    UNKNOWN_FINGERPRINT = "unknown_fingerprint"  # a schema version lrx does not know
    TRUNCATED = "truncated"
    INVALID_RECORD = "invalid_record"  # decodes, but breaks the contract
    WRONG_SCHEMA = "wrong_schema"  # a message of another kind on this topic
    MISSING_KEY = "missing_key"
    TOMBSTONE = "tombstone"  # lms.learning-records takes none
    WRONG_KEY = "wrong_key"  # the key is not the record's site/user
    WRONG_RECORD_ID = "wrong_record_id"  # the record id is not the record's own
    UNPROCESSABLE = "unprocessable"  # the rules raised a data error on it
    # The sink, on lrx.outbox.<recipient> (lrx.dlq.<recipient>).
    UNDECODABLE = "undecodable"
    MALFORMED = "malformed"  # the recipient's contract cannot carry it, or a 400 isolated it
    TOO_LARGE = "too_large"  # 413 for this record alone
    RETRIES_EXHAUSTED = "retries_exhausted"  # LRX_SINK_RETRY_MAX_TIME passed
    REJECTED = "rejected"  # the recipient rejected it and gave no code of its own
