"""Record identity: the same completion has one id however it is published; others differ."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.rules.record_identity import RECORD_NAMESPACE, completion_kind, record_id, record_id_of
from tests.support.records import COMPLETED, record_with

MOODLE_ORIGIN = {
    "moodle_event": "\\core\\event\\course_completed",
    "moodle_object_id": "8",
    "xapi_statement_id": None,
}


def test_the_id_is_a_pinned_uuid5():
    # Changing the namespace or the encoding would re-send every record ever delivered.
    assert uuid.UUID("98763b9b-1623-52df-ac8b-6243cfaa3e69") == RECORD_NAMESPACE
    name = '["sunnybrook", "17", "42", 1790780645, "course"]'  # 2026-09-30T15:04:05Z
    rid = record_id("sunnybrook", "17", "42", COMPLETED, "course")
    assert rid == str(uuid.uuid5(RECORD_NAMESPACE, name))
    assert uuid.UUID(rid).version == 5


def test_the_id_of_a_non_ascii_identity_is_pinned_too():
    # The name is UTF-8 JSON (ensure_ascii=False); escaping it would change every such id.
    rid = record_id("hôpital-montfort", "17", "42", COMPLETED, "course")
    assert rid == "cb8d3f5a-364e-5215-a27f-260df152f669"


def test_a_moodle_event_and_an_xapi_statement_of_one_completion_share_the_id():
    moodle = record_with(origin=MOODLE_ORIGIN)
    xapi = record_with(
        source="xapi",
        # xAPI timestamps carry milliseconds and any offset; Moodle stores whole seconds.
        completed_at=(COMPLETED + timedelta(milliseconds=731)).astimezone(
            timezone(timedelta(hours=-4))
        ),
        origin={"moodle_event": None, "moodle_object_id": None, "xapi_statement_id": "a-b-c"},
    )
    assert record_id_of(moodle) == record_id_of(xapi)


def test_state_voiding_and_expiry_do_not_change_the_id():
    original = record_id_of(record_with())
    assert record_id_of(record_with(voided=True)) == original
    assert record_id_of(record_with(expires_at=COMPLETED)) == original
    assert record_id_of(record_with(completion_state="complete_pass")) == original


@pytest.mark.parametrize(
    "changes",
    [
        {"site": "trillium"},
        {"user_id": "18"},
        {"course": {"id": "43", "shortname": "IPAC", "idnumber": None}},
        {"completed_at": COMPLETED + timedelta(seconds=1)},
        {"source": "activity_completion", "activity": {"cmid": "5"}},
        {"source": "legacy"},
        {"source": "csv_upload"},
    ],
)
def test_a_different_completion_gets_a_different_id(changes):
    assert record_id_of(record_with(**changes)) != record_id_of(record_with())


def test_activities_completed_in_the_same_second_differ():
    five = record_with(source="activity_completion", activity={"cmid": "5"})
    six = record_with(source="activity_completion", activity={"cmid": "6"})
    assert record_id_of(five) != record_id_of(six)


def test_supporting_documentation_is_the_completion_of_its_activity():
    upload = record_with(source="supporting_documentation", activity={"cmid": "77"})
    event = record_with(source="activity_completion", activity={"cmid": "77"})
    assert record_id_of(upload) == record_id_of(event)


def test_kinds():
    assert completion_kind("xapi") == completion_kind("course_completion") == "course"
    assert completion_kind("activity_completion", "5") == "activity:5"
    assert completion_kind("equivalency") == "equivalency"
    with pytest.raises(ValueError, match="needs the activity's cmid"):
        completion_kind("activity_completion", None)


def test_a_naive_completion_time_is_refused():
    with pytest.raises(ValueError, match="has no time zone"):
        record_id("s", "u", "c", datetime(2026, 1, 1), "course")


parts = st.text(max_size=8)


@given(
    st.tuples(parts, parts, parts, st.integers(-(10**10), 10**10), parts),
    st.tuples(parts, parts, parts, st.integers(-(10**10), 10**10), parts),
)
def test_distinct_identities_give_distinct_ids(one, other):
    def rid(site, user, course, seconds, kind):
        return record_id(site, user, course, datetime(1970, 1, 1, tzinfo=UTC) +
                         timedelta(seconds=seconds), kind)  # fmt: skip

    # Parts are kept apart: ("a/b", "c") and ("a", "b/c") are different users.
    assert (rid(*one) == rid(*other)) == (one == other)


# Strings a join-based encoding might use as its separator, or that break a naive quoting.
SEPARATORS = ["/", "|", ":", ",", ";", " ", "\n", "\t", "\x00", '"', '", "', "\\", "-"]


@given(
    st.lists(parts, min_size=4, max_size=4),
    st.sampled_from([0, 1]),
    st.one_of(st.sampled_from(SEPARATORS), st.text(min_size=1, max_size=3)),
)
def test_moving_text_across_a_part_boundary_changes_the_id(fields, boundary, moved):
    # ("a/", "b") and ("a", "/b") are two different users of two different sites.
    one, other = list(fields), list(fields)
    one[boundary] += moved
    other[boundary + 1] = moved + other[boundary + 1]
    when = datetime(2026, 9, 30, 15, 4, 5, tzinfo=UTC)
    site, user, course, kind = one
    site2, user2, course2, kind2 = other
    assert record_id(site, user, course, when, kind) != record_id(
        site2, user2, course2, when, kind2
    )
