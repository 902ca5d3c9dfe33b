"""Eligibility: may this learning record be sent to a recipient, and if not, why not.

`check` applies the rules in a fixed order and returns the first that fails, so
an LMS admin sees the most fundamental reason first (the order of the guide's
troubleshooting FAQ: did the user really complete the course, in this period,
with its activities; then is the profile right):

1. voided                    -- the LMS withdrew the record; nothing else matters
2. source_not_sent           -- legacy, CSV upload, equivalency, admin upload
3. not_complete / failed     -- incomplete (incl. xAPI result.completion false) / complete-fail
4. expired                   -- expires_at at or before now, or at or before completed_at
5. outside_period            -- completed_at not in the period being sent (earlier or later)
6. required_activity_missing -- a mandatory activity of the course is not completed
7. user_deleted              -- the LMS deleted the user
8. no_oci_id                 -- no profile yet, or an empty OCI ID field
9. invalid_oci_id            -- the OCI ID field cannot be parsed
10. college_not_enabled      -- a known college CMaRS does not support (WS400)

Rules 1-5 are facts of the record itself and final. Rule 6 and rules 8-9 can
change without a new record: the stream holds such records as pending
(`awaits`) and checks them again when an activity completes or the profile
changes; the OCI ID rules come last so that a held record is held for the one
thing still missing. Supporting documentation is sent like any completion.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from schemas.vocabulary import (
    ACTIVITY_SOURCES,
    DONE_STATES,
    NEVER_SENT_SOURCES,
    CompletionState,
    ReasonCode,
    Source,
)
from streams.rules.colleges import CollegeRegistry
from streams.rules.oci_id import OciId, OciIdError, OciIdErrorCode, parse_oci_id
from streams.rules.reporting_period import ReportingPeriod

__all__ = [
    "Awaiting",
    "Eligible",
    "Ineligible",
    "ProfileState",
    "Verdict",
    "awaits",
    "check",
    "completed_activity",
]


class Awaiting(StrEnum):
    """What a held (pending) record waits for."""

    PROFILE = "profile"  # a valid OCI ID in the user's profile
    ACTIVITY = "activity"  # the completion of the course's remaining required activities


_AWAITING = {
    ReasonCode.NO_OCI_ID: Awaiting.PROFILE,
    ReasonCode.INVALID_OCI_ID: Awaiting.PROFILE,
    ReasonCode.REQUIRED_ACTIVITY_MISSING: Awaiting.ACTIVITY,
}


def awaits(reason: ReasonCode | str) -> Awaiting | None:
    """What could still make a record with this reason eligible; None if the reason is final.

    The stream holds no_oci_id and invalid_oci_id records until the profile is fixed,
    and required_activity_missing ones until the activity completes, in both cases
    until the period closes. Every other reason is final.
    """
    return _AWAITING.get(ReasonCode(reason))


@dataclass(frozen=True)
class ProfileState:
    """What the users table keeps per user: the parsed OCI ID or why there is none.

    `oci_id` is parsed without requiring the college to be enabled, so that a
    change to the college registry takes effect at the next check.
    """

    oci_id: OciId | None = None
    oci_id_error: OciIdErrorCode | None = None
    oci_id_problem: str = ""
    deleted: bool = False

    @classmethod
    def of_profile(cls, profile: Mapping[str, Any], colleges: CollegeRegistry) -> ProfileState:
        """From a UserProfile dict."""
        deleted = bool(profile.get("deleted"))
        try:
            oci_id = parse_oci_id(profile.get("oci_id"), colleges, require_enabled=False)
        except OciIdError as error:
            return cls(None, error.code, str(error), deleted)
        return cls(oci_id, None, "", deleted)


@dataclass(frozen=True)
class Eligible:
    oci_id: OciId
    period: ReportingPeriod


@dataclass(frozen=True)
class Ineligible:
    reason: ReasonCode
    detail: str


Verdict = Eligible | Ineligible


def check(
    record: Mapping[str, Any],
    profile: ProfileState | None,
    *,
    required_activities: Collection[str],
    completed_activities: Collection[str],
    period: ReportingPeriod,
    now: datetime,
    colleges: CollegeRegistry,
) -> Verdict:
    """Decide one LearningRecord (a dict in the agreed shape); see the module docstring.

    `profile` is None when no profile has arrived for the user. `period` is the
    period being sent: the current one normally, or one an operator chose for a
    replay. `completed_activities` are the cmids the user has completed in the
    course; an activity record counts its own activity as completed.
    """
    source = Source(record["source"])
    state = CompletionState(record["completion_state"])
    completed_at: datetime = record["completed_at"]
    expires_at: datetime | None = record.get("expires_at")

    if record.get("voided"):
        return Ineligible(ReasonCode.VOIDED, "the LMS voided this record")
    if source in NEVER_SENT_SOURCES:
        return Ineligible(
            ReasonCode.SOURCE_NOT_SENT, f"records from source {source} are never sent to CMaRS"
        )
    if state is CompletionState.INCOMPLETE:
        return Ineligible(ReasonCode.NOT_COMPLETE, "the attempt is not complete")
    if state is CompletionState.COMPLETE_FAIL:
        return Ineligible(ReasonCode.FAILED, "the attempt was completed with a fail")
    if expires_at is not None and (expires_at <= now or expires_at <= completed_at):
        return Ineligible(
            ReasonCode.EXPIRED,
            f"the record expired at {expires_at.isoformat()} "
            f"(completed {completed_at.isoformat()}, checked {now.isoformat()})",
        )
    if completed_at not in period:
        when = "before" if completed_at < period.start else "after"
        return Ineligible(
            ReasonCode.OUTSIDE_PERIOD,
            f"completed {completed_at.isoformat()}, {when} reporting period {period.label} "
            f"[{period.start.isoformat()}, {period.end.isoformat()})",
        )
    missing = _missing_activities(record, required_activities, completed_activities)
    if missing:
        return Ineligible(
            ReasonCode.REQUIRED_ACTIVITY_MISSING,
            f"required activities not completed: cmid {', '.join(missing)}",
        )
    return _check_profile(profile, period, colleges)


def completed_activity(record: Mapping[str, Any]) -> str | None:
    """The cmid of the activity a LearningRecord shows completed, or None if it shows none.

    Such a record counts towards a course's required activities (rule 6): an activity
    source, a done state (not incomplete, not failed) and not voided. Expiry and
    period are not its to judge: the completion time decides which period it counts for.
    """
    activity = record.get("activity")
    if (
        not activity
        or record["source"] not in ACTIVITY_SOURCES
        or record["completion_state"] not in DONE_STATES
        or record.get("voided")
    ):
        return None
    return activity["cmid"]


def _missing_activities(
    record: Mapping[str, Any], required: Collection[str], completed: Collection[str]
) -> list[str]:
    activity = record.get("activity")
    own = {activity["cmid"]} if activity else set()
    return sorted(set(required) - set(completed) - own, key=lambda cmid: (len(cmid), cmid))


def _check_profile(
    profile: ProfileState | None, period: ReportingPeriod, colleges: CollegeRegistry
) -> Verdict:
    if profile is None:
        return Ineligible(ReasonCode.NO_OCI_ID, "no profile has arrived for this user")
    if profile.deleted:
        return Ineligible(ReasonCode.USER_DELETED, "the LMS deleted this user")
    if profile.oci_id is None:
        if profile.oci_id_error in (None, OciIdErrorCode.EMPTY):
            return Ineligible(ReasonCode.NO_OCI_ID, "the user's OCI ID field is empty")
        return Ineligible(
            ReasonCode.INVALID_OCI_ID, f"{profile.oci_id_error}: {profile.oci_id_problem}"
        )
    college = colleges.by_code(profile.oci_id.college)
    if college is None:
        return Ineligible(
            ReasonCode.INVALID_OCI_ID,
            f"OCI ID {profile.oci_id.canonical!r}: college {profile.oci_id.college} "
            f"is no longer in the college registry",
        )
    if not college.enabled:
        return Ineligible(
            ReasonCode.COLLEGE_NOT_ENABLED,
            f"OCI ID {profile.oci_id.canonical!r}: {college.name} is not enabled for CMaRS (WS400)",
        )
    return Eligible(profile.oci_id, period)
