"""Routing: each record's outcomes (Route, Hold or Reject) with the reason, detail and period
an LMS admin reads, and what the users table keeps of a profile."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from schemas.vocabulary import ReasonCode
from streams.rules.colleges import CollegeRegistry
from streams.rules.eligibility import ProfileState
from streams.rules.oci_id import OciId, OciIdErrorCode
from streams.rules.recipients import RecipientDirectory
from streams.rules.reporting_period import ReportingCalendar
from streams.rules.routing import (
    Hold,
    Reject,
    Route,
    RoutingRules,
    Subscription,
    activities_completed_in,
    profile_from_table,
    profile_to_table,
)
from tests.support.records import course_recipients, record_with

COLLEGES = CollegeRegistry.load()
DIRECTORY = RecipientDirectory(["cmars", "ohpe"], {"tahsn": "cmars"})
CALENDAR = ReportingCalendar()  # April 1, Toronto
RULES = RoutingRules(COLLEGES, DIRECTORY, CALENDAR)
NOW = datetime(2026, 10, 1, 12, tzinfo=UTC)  # in 2026-27; record_with() completes 2026-09-30
OCI = OciId("CA-ON-CPSO-12345", "CA-ON-CPSO", "12345")
VALID = ProfileState(OCI)
BOTH = Subscription(("cmars", "ohpe"))
# The last day of 2026-27, and the instant it closes (midnight in Toronto, EDT).
LAST_DAY = datetime(2027, 3, 30, 10, tzinfo=UTC)
CLOSED = datetime(2027, 4, 1, 4, tzinfo=UTC)
NEEDS_501 = Subscription(("cmars",), ("501",))


def ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


# --- decide: route, hold or reject -------------------------------------------------------


def test_an_eligible_record_is_routed_to_each_subscribed_recipient_with_its_oci_id_and_period():
    assert RULES.decide(record_with(), VALID, BOTH, None, NOW) == [
        Route("cmars", OCI, "2026-27"),
        Route("ohpe", OCI, "2026-27"),
    ]


def test_the_record_is_checked_against_now():
    """An expiry still ahead routes the record; once it has passed, the record is expired."""
    record = record_with(expires_at=datetime(2026, 10, 15, tzinfo=UTC))
    assert RULES.decide(record, VALID, BOTH, None, NOW) == [
        Route("cmars", OCI, "2026-27"),
        Route("ohpe", OCI, "2026-27"),
    ]
    later = datetime(2026, 10, 20, tzinfo=UTC)
    assert RULES.decide(record, VALID, BOTH, None, later) == [
        Reject(
            ReasonCode.EXPIRED,
            "the record expired at 2026-10-15T00:00:00+00:00 "
            "(completed 2026-09-30T15:04:05+00:00, checked 2026-10-20T00:00:00+00:00)",
            None,
            "2026-27",
        )
    ]


def test_a_final_reason_is_rejected_with_the_period_the_record_was_completed_in():
    # Completed in 2025-26 and checked in 2026-27: lrx.ineligible files it under 2025-26.
    record = record_with(completed_at=datetime(2026, 3, 30, 10, tzinfo=UTC))
    assert RULES.decide(record, VALID, BOTH, None, NOW) == [
        Reject(
            ReasonCode.OUTSIDE_PERIOD,
            "completed 2026-03-30T10:00:00+00:00, before reporting period 2026-27 "
            "[2026-04-01T04:00:00+00:00, 2027-04-01T04:00:00+00:00)",
            None,
            "2025-26",
        )
    ]


def test_a_final_reason_comes_before_the_course_s_missing_subscription():
    assert RULES.decide(record_with(voided=True), VALID, None, None, NOW) == [
        Reject(ReasonCode.VOIDED, "the LMS voided this record", None, "2026-27")
    ]


def test_a_course_no_recipient_subscribes_to_is_rejected_with_no_recipient():
    expected = [
        Reject(ReasonCode.NO_RECIPIENT, "no recipient subscribes to this course", None, "2026-27")
    ]
    assert RULES.decide(record_with(), VALID, None, None, NOW) == expected
    assert RULES.decide(record_with(), VALID, Subscription(), None, NOW) == expected


def test_a_record_that_would_wait_is_rejected_when_no_recipient_subscribes():
    # Holding it for an OCI ID would be pointless: nobody would receive it.
    assert RULES.decide(record_with(), None, None, None, NOW) == [
        Reject(ReasonCode.NO_RECIPIENT, "no recipient subscribes to this course", None, "2026-27")
    ]


def test_a_course_listing_only_unknown_recipients_names_them():
    subscription = Subscription.of_course_recipients(
        course_recipients("42", ["OHPE2", "cmars-old"]), DIRECTORY
    )
    assert RULES.decide(record_with(), VALID, subscription, None, NOW) == [
        Reject(
            ReasonCode.NO_RECIPIENT,
            "the course lists only unknown recipients: OHPE2, cmars-old",
            None,
            "2026-27",
        )
    ]


def test_a_record_waiting_for_an_oci_id_is_held_with_the_reason():
    assert RULES.decide(record_with(), None, BOTH, None, NOW) == [
        Hold(ReasonCode.NO_OCI_ID, "no profile has arrived for this user")
    ]


def test_a_record_waiting_for_a_required_activity_is_held_until_it_completes_in_the_period():
    record = record_with()
    assert RULES.decide(record, VALID, NEEDS_501, None, NOW) == [
        Hold(ReasonCode.REQUIRED_ACTIVITY_MISSING, "required activities not completed: cmid 501")
    ]
    # A completion in 2025-26 does not count for 2026-27; one in 2026-27 does.
    previous = {"501": [ms(datetime(2026, 3, 1, tzinfo=UTC))]}
    assert RULES.decide(record, VALID, NEEDS_501, previous, NOW)[0].reason is (
        ReasonCode.REQUIRED_ACTIVITY_MISSING
    )
    current = {"501": [ms(datetime(2026, 3, 1, tzinfo=UTC)), ms(datetime(2026, 9, 1, tzinfo=UTC))]}
    assert RULES.decide(record, VALID, NEEDS_501, current, NOW) == [Route("cmars", OCI, "2026-27")]


def test_an_activity_counts_for_a_period_from_its_first_millisecond_to_before_its_end():
    period = CALENDAR.period_starting_in(2026)
    completions = {
        "first": [ms(period.start)],
        "before": [ms(period.start) - 1],
        "last": [ms(period.end) - 1],
        "after": [ms(period.end)],
        "early-and-late": [ms(period.start) - 1, ms(period.end)],
        "never": [],
    }
    assert activities_completed_in(completions, period) == {"first", "last"}
    assert activities_completed_in(None, period) == set()


# --- close: a held record whose own period is over ---------------------------------------


def test_a_held_record_whose_period_closed_is_rejected_with_the_held_reason():
    # It expires in 2028: the expiry, checked at the close, is not why it is rejected.
    record = record_with(completed_at=LAST_DAY, expires_at=datetime(2028, 3, 30, tzinfo=UTC))
    assert RULES.close(record, None, BOTH, None, CLOSED) == [
        Reject(
            ReasonCode.NO_OCI_ID,
            "reporting period 2026-27 closed while held: no profile has arrived for this user",
            None,
            "2026-27",
        )
    ]


def test_closing_a_record_whose_period_is_still_open_decides_it_as_usual():
    completions = {"501": [ms(datetime(2026, 9, 1, tzinfo=UTC))]}
    assert RULES.close(record_with(), VALID, NEEDS_501, completions, NOW) == [
        Route("cmars", OCI, "2026-27")
    ]
    assert RULES.close(record_with(), None, BOTH, None, NOW) == [
        Hold(ReasonCode.NO_OCI_ID, "no profile has arrived for this user")
    ]


def test_a_record_that_became_decidable_before_its_period_closed_is_judged_by_the_current_one():
    # The activity completed on 2027-03-31, inside 2026-27, but the record was not decided
    # again before the close: it is not sent late into 2027-28.
    completions = {"501": [ms(datetime(2027, 3, 31, 12, tzinfo=UTC))]}
    record = record_with(completed_at=LAST_DAY)
    assert RULES.close(record, VALID, NEEDS_501, completions, CLOSED) == [
        Reject(
            ReasonCode.OUTSIDE_PERIOD,
            "completed 2027-03-30T10:00:00+00:00, before reporting period 2027-28 "
            "[2027-04-01T04:00:00+00:00, 2028-04-01T04:00:00+00:00)",
            None,
            "2026-27",
        )
    ]


# --- what a course's subscription and a user's profile keep ------------------------------


def test_a_subscription_resolves_names_once_each_and_keeps_unknown_names_aside():
    value = course_recipients("42", ["CMaRS", "tahsn", "OHPE", "Moodle", "cmars"], ["7", "5", "7"])
    assert Subscription.of_course_recipients(value, DIRECTORY) == Subscription(
        ("cmars", "ohpe"), ("7", "5"), ("Moodle",)
    )


INVALID_DELETED = ProfileState(
    None, OciIdErrorCode.UNKNOWN_COLLEGE, "OCI ID 'CA-ON-CNO-1': unknown college", True
)


def test_the_users_table_keeps_a_profile_state_as_json():
    assert profile_to_table(VALID) == {
        "oci_id": ["CA-ON-CPSO-12345", "CA-ON-CPSO", "12345"],
        "error": None,
        "problem": "",
        "deleted": False,
    }
    value = profile_to_table(INVALID_DELETED)
    assert value == {
        "oci_id": None,
        "error": "unknown_college",
        "problem": "OCI ID 'CA-ON-CNO-1': unknown college",
        "deleted": True,
    }
    assert json.loads(json.dumps(value)) == value


def test_a_profile_state_reads_back_from_the_users_table_as_it_was():
    states = [VALID, INVALID_DELETED, ProfileState(), ProfileState(deleted=True)]
    for state in states:
        assert profile_from_table(json.loads(json.dumps(profile_to_table(state)))) == state
    assert profile_from_table(None) is None


def test_a_table_value_without_problem_or_deleted_reads_as_a_live_user_without_a_problem():
    value = {"oci_id": ["CA-ON-CPSO-12345", "CA-ON-CPSO", "12345"], "error": None}
    assert profile_from_table(value) == ProfileState(OCI, None, "", False)
