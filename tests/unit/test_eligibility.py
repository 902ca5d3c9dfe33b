"""Eligibility: every reason code, in the documented order, and what a held record waits for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.vocabulary import (
    ACTIVITY_SOURCES,
    DONE_STATES,
    NEVER_SENT_SOURCES,
    CompletionState,
    ReasonCode,
    Source,
)
from streams.rules.colleges import CollegeRegistry
from streams.rules.eligibility import (
    Awaiting,
    Eligible,
    Ineligible,
    ProfileState,
    awaits,
    check,
    completed_activity,
)
from streams.rules.oci_id import OciId, OciIdErrorCode
from streams.rules.reporting_period import FISCAL_YEAR
from tests.support.records import COMPLETED, record_with

COLLEGES = CollegeRegistry.load()
NOW = datetime(2026, 10, 1, 12, tzinfo=UTC)
PERIOD = FISCAL_YEAR.period_of(NOW)  # 2026-27
VALID = ProfileState.of_profile({"oci_id": "College of Midwives of Ontario | 0042"}, COLLEGES)


def decide(record=None, profile=VALID, required=(), completed=(), now=NOW):
    return check(
        record if record is not None else record_with(),
        profile,
        required_activities=required,
        completed_activities=completed,
        period=PERIOD,
        now=now,
        colleges=COLLEGES,
    )


def reason_of(verdict) -> ReasonCode:
    assert isinstance(verdict, Ineligible), verdict
    assert verdict.detail  # every reason carries a human explanation
    return verdict.reason


@pytest.mark.parametrize(
    "source", [Source.COURSE_COMPLETION, Source.XAPI, Source.ACTIVITY_COMPLETION]
)
@pytest.mark.parametrize(
    "state", [CompletionState.COMPLETE, CompletionState.COMPLETE_PASS]
)  # fmt: skip
def test_a_complete_record_of_a_user_with_a_valid_oci_id_is_eligible(source, state):
    activity = {"cmid": "9", "name": "Quiz", "modname": "quiz"}
    record = record_with(
        source=str(source), completion_state=str(state),
        activity=activity if source is Source.ACTIVITY_COMPLETION else None,
    )  # fmt: skip
    assert decide(record) == Eligible(OciId("CA-ON-CMO-0042", "CA-ON-CMO", "0042"), PERIOD)


def test_supporting_documentation_is_sent():
    record = record_with(
        source="supporting_documentation",
        activity={"cmid": "77", "name": "Supporting Documentation", "modname": "assign"},
    )
    # The upload is itself the required activity, so it counts as completed.
    assert isinstance(decide(record, required=["77"]), Eligible)


@pytest.mark.parametrize("source", ["csv_upload", "equivalency", "admin_upload", "legacy"])
def test_sources_that_are_never_sent(source):
    verdict = decide(record_with(source=source))
    assert reason_of(verdict) is ReasonCode.SOURCE_NOT_SENT
    assert source in verdict.detail


def test_voided():
    assert reason_of(decide(record_with(voided=True))) is ReasonCode.VOIDED


def test_incomplete_including_xapi_completion_false():
    record = record_with(source="xapi", completion_state="incomplete")
    assert reason_of(decide(record)) is ReasonCode.NOT_COMPLETE


def test_failed():
    record = record_with(completion_state="complete_fail")
    assert reason_of(decide(record)) is ReasonCode.FAILED


@pytest.mark.parametrize(
    "expires_at",
    [NOW - timedelta(days=1), NOW, COMPLETED, COMPLETED - timedelta(seconds=1)],
    ids=["before now", "at now", "at completion", "before completion"],
)
def test_expired(expires_at):
    verdict = decide(record_with(expires_at=expires_at))
    assert reason_of(verdict) is ReasonCode.EXPIRED
    assert expires_at.isoformat() in verdict.detail


def test_an_expiry_in_the_future_is_fine():
    assert isinstance(decide(record_with(expires_at=NOW + timedelta(days=30))), Eligible)


@pytest.mark.parametrize(
    ("completed_at", "when"),
    [
        (PERIOD.start - timedelta(milliseconds=1), "before"),
        (datetime(2025, 6, 1, tzinfo=UTC), "before"),
        (PERIOD.end, "after"),
    ],
)
def test_outside_period(completed_at, when):
    verdict = decide(record_with(completed_at=completed_at))
    assert reason_of(verdict) is ReasonCode.OUTSIDE_PERIOD
    assert f"{when} reporting period 2026-27" in verdict.detail


def test_the_first_millisecond_of_the_period_is_inside():
    assert isinstance(decide(record_with(completed_at=PERIOD.start)), Eligible)


def test_required_activity_missing_names_the_missing_cmids():
    verdict = decide(required=["5", "12", "3"], completed=["12"])
    assert reason_of(verdict) is ReasonCode.REQUIRED_ACTIVITY_MISSING
    assert verdict.detail.endswith("cmid 3, 5")


def test_required_activities_all_completed():
    assert isinstance(decide(required=["5", "12"], completed=["12", "5", "99"]), Eligible)


def test_an_activity_record_still_needs_the_other_required_activities():
    record = record_with(source="activity_completion", activity={"cmid": "5"})
    assert reason_of(decide(record, required=["5", "6"])) is ReasonCode.REQUIRED_ACTIVITY_MISSING
    assert isinstance(decide(record, required=["5", "6"], completed=["6"]), Eligible)


def test_user_deleted():
    profile = ProfileState.of_profile({"oci_id": "CA-ON-CPSO-1", "deleted": True}, COLLEGES)
    assert reason_of(decide(profile=profile)) is ReasonCode.USER_DELETED


@pytest.mark.parametrize(
    "profile",
    [
        None,
        ProfileState.of_profile({"oci_id": None}, COLLEGES),
        ProfileState.of_profile({"oci_id": "   "}, COLLEGES),
    ],
    ids=["no profile", "field null", "field blank"],
)
def test_no_oci_id(profile):
    assert reason_of(decide(profile=profile)) is ReasonCode.NO_OCI_ID


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("CA-ON-CNO-12345", "unknown_college"),
        ("CA-ON-CPSO-12x", "malformed_licence"),
        ("CA-ON-CPSO-1 2", "trailing_garbage"),
    ],
)
def test_invalid_oci_id_says_what_is_wrong_with_it(value, code):
    verdict = decide(profile=ProfileState.of_profile({"oci_id": value}, COLLEGES))
    assert reason_of(verdict) is ReasonCode.INVALID_OCI_ID
    assert verdict.detail.startswith(f"{code}: OCI ID {value!r}")


def test_college_not_enabled():
    profile = ProfileState.of_profile({"oci_id": "CA-ON-COPO-12345"}, COLLEGES)
    assert profile.oci_id is not None  # parsed: enablement is decided at check time
    verdict = decide(profile=profile)
    assert reason_of(verdict) is ReasonCode.COLLEGE_NOT_ENABLED
    assert "WS400" in verdict.detail


def test_a_college_removed_from_the_registry_makes_a_stored_oci_id_invalid():
    profile = ProfileState(oci_id=OciId("CA-ON-CNO-1", "CA-ON-CNO", "1"))
    assert reason_of(decide(profile=profile)) is ReasonCode.INVALID_OCI_ID


def test_the_first_failing_rule_in_the_documented_order_wins():
    everything_wrong = record_with(
        voided=True,
        source="legacy",
        completion_state="incomplete",
        expires_at=NOW,
        completed_at=datetime(2020, 1, 1, tzinfo=UTC),
    )
    expected = [
        ("voided", ReasonCode.VOIDED, False),
        ("source", ReasonCode.SOURCE_NOT_SENT, "course_completion"),
        ("completion_state", ReasonCode.NOT_COMPLETE, "complete"),
        ("expires_at", ReasonCode.EXPIRED, None),
        ("completed_at", ReasonCode.OUTSIDE_PERIOD, COMPLETED),
    ]
    record = everything_wrong
    for field, reason, fixed in expected:
        verdict = decide(record, profile=None, required=["1"])
        assert reason_of(verdict) is reason, field
        record = {**record, field: fixed}
    assert reason_of(decide(record, profile=None, required=["1"])) is (
        ReasonCode.REQUIRED_ACTIVITY_MISSING
    )
    assert reason_of(decide(record, profile=None, required=["1"], completed=["1"])) is (
        ReasonCode.NO_OCI_ID
    )


def test_every_reason_code_but_routing_s_own_comes_from_check():
    produced = {
        reason_of(decide(record_with(voided=True))),
        reason_of(decide(record_with(source="legacy"))),
        reason_of(decide(record_with(completion_state="incomplete"))),
        reason_of(decide(record_with(completion_state="complete_fail"))),
        reason_of(decide(record_with(expires_at=NOW))),
        reason_of(decide(record_with(completed_at=PERIOD.end))),
        reason_of(decide(required=["1"])),
        reason_of(decide(profile=ProfileState(deleted=True))),
        reason_of(decide(profile=None)),
        reason_of(decide(profile=ProfileState(None, OciIdErrorCode.UNKNOWN_COLLEGE, "x"))),
        reason_of(decide(profile=ProfileState(OciId("CA-ON-COPO-1", "CA-ON-COPO", "1")))),
    }
    # no_recipient is decided by routing: a course with no subscription never reaches check().
    assert produced == set(ReasonCode) - {ReasonCode.NO_RECIPIENT}


def test_what_held_records_wait_for():
    assert awaits(ReasonCode.NO_OCI_ID) is Awaiting.PROFILE
    assert awaits("invalid_oci_id") is Awaiting.PROFILE
    assert awaits(ReasonCode.REQUIRED_ACTIVITY_MISSING) is Awaiting.ACTIVITY
    final = set(ReasonCode) - {
        ReasonCode.NO_OCI_ID,
        ReasonCode.INVALID_OCI_ID,
        ReasonCode.REQUIRED_ACTIVITY_MISSING,
    }
    assert all(awaits(reason) is None for reason in final)
    with pytest.raises(ValueError):
        awaits("bogus")


@pytest.mark.parametrize("source", list(Source))
def test_a_source_is_not_sent_exactly_when_the_vocabulary_says_so(source):
    activity = {"cmid": "5", "name": "Quiz", "modname": "quiz"}
    verdict = decide(record_with(source=source, activity=activity))
    not_sent = isinstance(verdict, Ineligible) and verdict.reason is ReasonCode.SOURCE_NOT_SENT
    assert not_sent is (source in NEVER_SENT_SOURCES)


@pytest.mark.parametrize("state", list(CompletionState))
def test_a_state_passes_rule_3_exactly_when_it_is_done(state):
    verdict = decide(record_with(completion_state=state))
    assert isinstance(verdict, Eligible) is (state in DONE_STATES)


ACTIVITY = {"cmid": "311", "name": "Supporting Documentation", "modname": "assign"}


@pytest.mark.parametrize("source", sorted(ACTIVITY_SOURCES))
@pytest.mark.parametrize("state", sorted(DONE_STATES))
def test_a_done_activity_record_names_its_completed_activity(source, state):
    record = record_with(source=source, completion_state=state, activity=ACTIVITY)
    assert completed_activity(record) == "311"
    # Expiry and period are the record's own verdict, not the activity's completion.
    assert completed_activity({**record, "expires_at": COMPLETED}) == "311"
    assert completed_activity({**record, "completed_at": PERIOD.end}) == "311"


@pytest.mark.parametrize(
    "changes",
    [
        {"activity": None},
        {"source": "course_completion"},
        {"source": "xapi"},
        {"source": "equivalency"},
        {"completion_state": "incomplete"},
        {"completion_state": "complete_fail"},
        {"voided": True},
    ],
)
def test_a_record_that_is_no_done_activity_completes_none(changes):
    record = record_with(source="activity_completion", activity=ACTIVITY)
    assert completed_activity(record) == "311"
    assert completed_activity({**record, **changes}) is None


KNOWN = "CA-ON-CMO, CA-ON-COPO (not enabled), CA-ON-CPSO, CA-ON-RCDSO"


@pytest.mark.parametrize(
    ("changes", "profile", "reason", "detail"),
    [
        ({"voided": True}, VALID, ReasonCode.VOIDED, "the LMS voided this record"),
        (
            {"source": "legacy"}, VALID, ReasonCode.SOURCE_NOT_SENT,
            "records from source legacy are never sent to CMaRS",
        ),
        (
            {"completion_state": "incomplete"}, VALID, ReasonCode.NOT_COMPLETE,
            "the attempt is not complete",
        ),
        (
            {"completion_state": "complete_fail"}, VALID, ReasonCode.FAILED,
            "the attempt was completed with a fail",
        ),
        (
            {"expires_at": NOW}, VALID, ReasonCode.EXPIRED,
            "the record expired at 2026-10-01T12:00:00+00:00 "
            "(completed 2026-09-30T15:04:05+00:00, checked 2026-10-01T12:00:00+00:00)",
        ),
        (
            {"completed_at": PERIOD.end}, VALID, ReasonCode.OUTSIDE_PERIOD,
            "completed 2027-04-01T04:00:00+00:00, after reporting period 2026-27 "
            "[2026-04-01T04:00:00+00:00, 2027-04-01T04:00:00+00:00)",
        ),
        ({}, None, ReasonCode.NO_OCI_ID, "no profile has arrived for this user"),
        ({}, ProfileState(OciId("CA-ON-CPSO-1", "CA-ON-CPSO", "1"), deleted=True),
         ReasonCode.USER_DELETED, "the LMS deleted this user"),
        ({}, ProfileState(), ReasonCode.NO_OCI_ID, "the user's OCI ID field is empty"),
        (
            {}, ProfileState.of_profile({"oci_id": ""}, COLLEGES), ReasonCode.NO_OCI_ID,
            "the user's OCI ID field is empty",
        ),
        (
            {}, ProfileState.of_profile({"oci_id": "CA-ON-CNO-12345"}, COLLEGES),
            ReasonCode.INVALID_OCI_ID,
            "unknown_college: OCI ID 'CA-ON-CNO-12345': unknown college 'CA-ON-CNO'; "
            f"known: {KNOWN}",
        ),
        (
            {}, ProfileState(OciId("CA-ON-CNO-1", "CA-ON-CNO", "1")), ReasonCode.INVALID_OCI_ID,
            "OCI ID 'CA-ON-CNO-1': college CA-ON-CNO is no longer in the college registry",
        ),
        (
            {}, ProfileState.of_profile({"oci_id": "CA-ON-COPO-12345"}, COLLEGES),
            ReasonCode.COLLEGE_NOT_ENABLED,
            "OCI ID 'CA-ON-COPO-12345': College of Optometrists of Ontario is not enabled for "
            "CMaRS (WS400)",
        ),
    ],
    ids=[
        "voided", "source", "incomplete", "failed", "expired", "outside period", "no profile",
        "deleted", "no oci id", "blank oci id", "invalid oci id", "college removed",
        "college not enabled",
    ],
)  # fmt: skip
def test_each_reason_comes_with_the_detail_the_lms_admin_reads(changes, profile, reason, detail):
    assert decide(record_with(**changes), profile=profile) == Ineligible(reason, detail)


def test_missing_activities_are_listed_in_numeric_order():
    verdict = decide(required=["12", "3", "100", "5"], completed=["5"])
    assert verdict == Ineligible(
        ReasonCode.REQUIRED_ACTIVITY_MISSING, "required activities not completed: cmid 3, 12, 100"
    )


def test_an_expiry_at_the_completion_instant_is_expired_even_while_now_is_earlier():
    # The LMS's clock is a minute ahead of the pipeline's: the record is completed "later"
    # than now, and an expiry at (or before) its completion still makes it expired.
    completed = NOW + timedelta(minutes=1)
    verdict = decide(record_with(completed_at=completed, expires_at=completed))
    assert reason_of(verdict) is ReasonCode.EXPIRED
    assert isinstance(
        decide(record_with(completed_at=completed, expires_at=completed + timedelta(seconds=1))),
        Eligible,
    )


def test_a_profile_with_a_valid_oci_id_keeps_it_parsed_with_no_problem():
    state = ProfileState.of_profile({"oci_id": "cpso #12345"}, COLLEGES)
    assert state == ProfileState(OciId("CA-ON-CPSO-12345", "CA-ON-CPSO", "12345"), None, "", False)


def test_a_deleted_user_with_a_bad_oci_id_is_kept_deleted_and_rejected_as_deleted():
    state = ProfileState.of_profile({"oci_id": "CA-ON-CNO-1", "deleted": True}, COLLEGES)
    assert state == ProfileState(
        None,
        OciIdErrorCode.UNKNOWN_COLLEGE,
        f"OCI ID 'CA-ON-CNO-1': unknown college 'CA-ON-CNO'; known: {KNOWN}",
        True,
    )
    assert decide(profile=state) == Ineligible(ReasonCode.USER_DELETED, "the LMS deleted this user")
