"""Routing: what happens to one learning record, as pure decisions.

`decide` turns a record plus what the pipeline knows (the user's profile, the
course's subscription, the user's activity completions) into outcomes:

- `Route` to each recipient subscribed to the course, when the record is eligible;
- `Hold` while it waits for something that may still come (a valid OCI ID, a
  required activity), until its reporting period closes;
- `Reject` with a reason code otherwise.

No Kafka here: streams/worker/pipeline.py applies the outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.vocabulary import ReasonCode
from streams.rules.colleges import CollegeRegistry
from streams.rules.eligibility import Eligible, Ineligible, ProfileState, awaits, check
from streams.rules.oci_id import OciId, OciIdErrorCode
from streams.rules.recipients import RecipientDirectory, RecipientError
from streams.rules.reporting_period import ReportingCalendar, ReportingPeriod

__all__ = [
    "Route",
    "Hold",
    "Reject",
    "Outcome",
    "Subscription",
    "RoutingRules",
    "profile_to_table",
    "profile_from_table",
    "activities_completed_in",
]


@dataclass(frozen=True)
class Route:
    recipient: str
    oci_id: OciId
    period: str


@dataclass(frozen=True)
class Hold:
    reason: ReasonCode
    detail: str


@dataclass(frozen=True)
class Reject:
    reason: ReasonCode
    detail: str
    recipient: str | None = None
    period: str | None = None


Outcome = Route | Hold | Reject


@dataclass(frozen=True)
class Subscription:
    """A course's resolved recipients and required activities."""

    recipients: tuple[str, ...] = ()
    required_activities: tuple[str, ...] = ()
    unknown_recipients: tuple[str, ...] = field(default=())

    @classmethod
    def of_course_recipients(
        cls, value: Mapping[str, Any], directory: RecipientDirectory
    ) -> Subscription:
        """From a CourseRecipients dict; names no directory entry knows are kept aside."""
        known: list[str] = []
        unknown: list[str] = []
        for name in value.get("recipients") or ():
            try:
                known.append(directory.resolve(name))
            except RecipientError:
                unknown.append(name)
        return cls(
            tuple(dict.fromkeys(known)),
            tuple(dict.fromkeys(value.get("required_activities") or ())),
            tuple(unknown),
        )


def profile_to_table(state: ProfileState) -> dict[str, Any]:
    """The users-table value (JSON) of a ProfileState."""
    oci = state.oci_id
    return {
        "oci_id": [oci.canonical, oci.college, oci.licence] if oci else None,
        "error": str(state.oci_id_error) if state.oci_id_error else None,
        "problem": state.oci_id_problem,
        "deleted": state.deleted,
    }


def profile_from_table(value: Mapping[str, Any] | None) -> ProfileState | None:
    if value is None:
        return None
    oci = value.get("oci_id")
    error = value.get("error")
    return ProfileState(
        OciId(*oci) if oci else None,
        OciIdErrorCode(error) if error else None,
        value.get("problem", ""),
        bool(value.get("deleted")),
    )


def activities_completed_in(
    completions: Mapping[str, Sequence[int]] | None, period: ReportingPeriod
) -> set[str]:
    """cmids with a completion (epoch ms) inside the period."""
    start, end = _ms(period.start), _ms(period.end)
    return {
        cmid for cmid, times in (completions or {}).items() if any(start <= t < end for t in times)
    }


@dataclass(frozen=True)
class RoutingRules:
    """The configuration the decisions depend on."""

    colleges: CollegeRegistry
    directory: RecipientDirectory
    calendar: ReportingCalendar

    def decide(
        self,
        record: Mapping[str, Any],
        profile: ProfileState | None,
        subscription: Subscription | None,
        completions: Mapping[str, Sequence[int]] | None,
        now: datetime,
    ) -> list[Outcome]:
        """The outcomes of a record checked now, against the current reporting period."""
        period = self.calendar.period_of(now)
        return self._decide(record, profile, subscription, completions, now, period)

    def close(
        self,
        record: Mapping[str, Any],
        profile: ProfileState | None,
        subscription: Subscription | None,
        completions: Mapping[str, Sequence[int]] | None,
        now: datetime,
    ) -> list[Outcome]:
        """Outcomes of a held record whose own period has closed: Reject with the held reason."""
        own = self.calendar.period_of(record["completed_at"])
        if own.end > now:
            return self.decide(record, profile, subscription, completions, now)
        outcomes = self._decide(record, profile, subscription, completions, now, own)
        if len(outcomes) == 1 and isinstance(outcomes[0], Hold):
            held = outcomes[0]
            detail = f"reporting period {own.label} closed while held: {held.detail}"
            return [Reject(held.reason, detail, None, own.label)]
        # Became decidable after all, but its period is over: the current period decides.
        return self.decide(record, profile, subscription, completions, now)

    def _decide(
        self,
        record: Mapping[str, Any],
        profile: ProfileState | None,
        subscription: Subscription | None,
        completions: Mapping[str, Sequence[int]] | None,
        now: datetime,
        period: ReportingPeriod,
    ) -> list[Outcome]:
        subscription = subscription or Subscription()
        verdict = check(
            record,
            profile,
            required_activities=subscription.required_activities,
            completed_activities=activities_completed_in(completions, period),
            period=period,
            now=now,
            colleges=self.colleges,
        )
        label = self.calendar.period_of(record["completed_at"]).label
        if isinstance(verdict, Ineligible) and awaits(verdict.reason) is None:
            return [Reject(verdict.reason, verdict.detail, None, label)]
        if not subscription.recipients:
            detail = _no_recipient_detail(subscription)
            return [Reject(ReasonCode.NO_RECIPIENT, detail, None, label)]
        if isinstance(verdict, Ineligible):
            return [Hold(verdict.reason, verdict.detail)]
        assert isinstance(verdict, Eligible)
        return [Route(r, verdict.oci_id, verdict.period.label) for r in subscription.recipients]


def _no_recipient_detail(subscription: Subscription) -> str:
    if subscription.unknown_recipients:
        return "the course lists only unknown recipients: " + ", ".join(
            subscription.unknown_recipients
        )
    return "no recipient subscribes to this course"


def _ms(instant: datetime) -> int:
    return int(instant.astimezone(UTC).timestamp() * 1000)
