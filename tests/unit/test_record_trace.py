"""`lrx trace` text (deploy/record_trace.py): every fate of a record is shown with its reason."""

from __future__ import annotations

from datetime import UTC, datetime

from deploy.record_trace import record_lines, trace_lines
from streams.read_model.record_fate import Fate, Outcome
from streams.read_model.user_trace import RecordTrace, UserTrace
from streams.rules.colleges import CollegeRegistry
from streams.rules.eligibility import ProfileState
from tests.support.records import course_recipients, learning_record, profile

AT = datetime(2026, 10, 5, 12, 30, 1, tzinfo=UTC)
RECEIPT = {"delivered_at": AT, "batch_id": "b-1", "outcome": "accepted", "oci_id": "CA-ON-CPSO-1"}


def test_each_fate_has_a_line_with_its_reason() -> None:
    record = learning_record("55", "c1", "2026-10-01T09:00:00+00:00")
    trace = RecordTrace(
        record,
        "2026-2027",
        [
            Outcome(Fate.DELIVERED, "cmars", "accepted", receipt=RECEIPT),
            Outcome(Fate.ROUTED, "tahsn"),
            Outcome(Fate.DEAD_LETTERED, "other", "WS401", "no such practitioner", attempts=2),
            Outcome(Fate.INELIGIBLE, "", "not_complete", "the attempt is incomplete"),
            Outcome(Fate.INELIGIBLE, "cmars", "college_not_enabled", "CNO is not sent"),
        ],
    )
    assert record_lines(trace) == [
        "cmars: DELIVERED 2026-10-05 12:30:01 UTC in batch b-1 (accepted, as CA-ON-CPSO-1)",
        "tahsn: routed, delivery pending (waiting for the sink)",
        "other: DEAD-LETTERED WS401: no such practitioner (2 tries)",
        "INELIGIBLE: not_complete (the attempt is incomplete)",
        "INELIGIBLE for cmars: college_not_enabled (CNO is not sent)",
    ]


def test_a_held_record_says_what_it_waits_for_first_and_an_undecided_one_says_so() -> None:
    record = learning_record("55", "c1", "2026-10-01T09:00:00+00:00")
    held = RecordTrace(record, "2026-2027", [Outcome(Fate.PENDING)], "no_oci_id: no OCI ID")
    assert record_lines(held) == [
        "PENDING (no_oci_id: no OCI ID); it is sent as soon as that is fixed"
    ]
    assert record_lines(RecordTrace(record, "2026-2027")) == [
        "not decided yet: the worker has not reached it (or is not running)"
    ]


def test_the_report_names_the_profile_each_course_and_dead_lettered_input() -> None:
    record = learning_record("55", "c1", "2026-10-01T09:00:00+00:00")
    bad = profile("55", "CPSO 12AB")
    letter = {"source_topic": "lms.learning-records", "source_partition": 2, "source_offset": 9,
              "reason_code": "wrong_key", "error_message": "key b'x' is not site/user"}  # fmt: skip
    trace = UserTrace(
        "sunnybrook",
        "55",
        bad,
        ProfileState.of_profile(bad, CollegeRegistry.load()),
        {"c1": course_recipients("c1", ["cmars"], ["501"]), "c2": None},
        [RecordTrace(record, "2026-2027", [Outcome(Fate.ROUTED, "cmars")])],
        [letter],
    )
    lines = trace_lines(trace)
    assert lines[0].startswith("user sunnybrook/55 (user55): OCI ID INVALID 'CPSO 12AB': ")
    assert lines[1] == (
        "  the worker dead-lettered input from lms.learning-records[2]@9: "
        "wrong_key: key b'x' is not site/user"
    )
    assert lines[2] == "course c1: recipients cmars; required activities 501"
    assert lines[3].startswith(f"  record {record['record_id']}: course_completion, complete,")
    assert lines[4] == "    cmars: routed, delivery pending (waiting for the sink)"
    assert lines[5:] == [
        "course c2: NOT SUBSCRIBED: no recipient was ever added on its Learning record "
        "exchange page",
        "  no learning record: the LMS sent no completion for this course",
    ]
