"""Moodle events, xAPI statements and our JSON become the same LearningRecords."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.lms.formats import LmsContext, map_batch
from connectors.lms.problems import InvalidInput
from schemas.codec import Codec
from tests.support.lms import COMPLETED, course_completed, module_completion, statement

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SITE = LmsContext("sunnybrook", {"sunnybrook": "https://lms.sunnybrook.example"})


def test_course_completed_uses_relateduserid_and_timecompleted():
    [record] = map_batch("moodle", course_completed(), SITE, NOW).records
    assert record["user_id"] == "55"
    assert record["completed_at"] == COMPLETED
    assert record["course"] == {"id": "42", "shortname": "WHMIS-2026", "idnumber": None}
    assert record["source"] == "course_completion"
    assert record["completion_state"] == "complete"
    assert record["origin"]["moodle_object_id"] == "991"
    Codec.default().encode("LearningRecord", record)  # fits the contract


def test_completion_time_falls_back_to_timecreated():
    event = course_completed()
    del event["timecompleted"]
    [record] = map_batch("moodle", event, SITE, NOW).records
    assert record["completed_at"] == datetime.fromtimestamp(event["timecreated"], UTC)


@pytest.mark.parametrize(
    ("state", "expected"),
    [(0, "incomplete"), (1, "complete"), (2, "complete_pass"), (3, "complete_fail")],
)
def test_module_completion_states(state, expected):
    [record] = map_batch("moodle", module_completion(state), SITE, NOW).records
    assert record["completion_state"] == expected
    assert record["activity"] == {"cmid": "77", "name": None, "modname": "scorm"}
    assert record["source"] == "activity_completion"


def test_other_events_are_ignored_and_counted():
    batch = map_batch(
        "moodle",
        [course_completed(), {"eventname": "\\core\\event\\user_loggedin", "userid": 3}],
        SITE,
        NOW,
    )
    assert (len(batch.records), batch.ignored) == (1, 1)


def test_same_completion_as_moodle_event_or_xapi_statement_has_one_record_id():
    [moodle] = map_batch("moodle", course_completed(), SITE, NOW).records
    [xapi] = map_batch("xapi", statement(), SITE, NOW).records
    assert moodle["record_id"] == xapi["record_id"]
    assert xapi["source"] == "xapi"
    assert xapi["course"]["shortname"] == "WHMIS 2026"


@pytest.mark.parametrize(
    ("result", "state"),
    [
        (None, "complete"),
        ({"completion": True}, "complete"),
        ({"completion": False}, "incomplete"),
        ({"completion": True, "success": False}, "complete_fail"),
    ],
)
def test_xapi_result(result, state):
    value = statement() if result is None else statement(result=result)
    [record] = map_batch("xapi", value, SITE, NOW).records
    assert record["completion_state"] == state


def test_xapi_other_verbs_are_ignored():
    batch = map_batch(
        "xapi", statement(verb={"id": "http://adlnet.gov/expapi/verbs/attempted"}), SITE, NOW
    )
    assert (batch.records, batch.ignored) == ([], 1)


def test_bad_batch_reports_every_problem_with_its_path():
    bad_event = course_completed()
    del bad_event["relateduserid"]
    bad_state = module_completion(7)
    with pytest.raises(InvalidInput) as caught:
        map_batch("moodle", [course_completed(), bad_event, "nonsense", bad_state], SITE, NOW)
    assert [str(p) for p in caught.value.problems] == [
        "[1].relateduserid: missing",
        "[2]: must be an object, not a string",
        "[3].other.completionstate: 7 is not 0, 1, 2 or 3",
    ]


def test_xapi_problems_name_their_paths():
    wrong_site = statement(
        actor={"account": {"homePage": "https://elsewhere.example", "name": "5"}}
    )
    mbox = statement(actor={"mbox": "mailto:dr@example.com"})
    not_course = statement(object={"id": "https://lms.sunnybrook.example/blocks/xp/index.php?id=3"})
    no_time = statement()
    del no_time["timestamp"]
    with pytest.raises(InvalidInput) as caught:
        map_batch("xapi", [wrong_site, mbox, not_course, no_time], SITE, NOW)
    assert [p.path for p in caught.value.problems] == [
        "[0].actor.account.homePage",
        "[1].actor.mbox",
        "[2].object.id",
        "[3].timestamp",
    ]
    assert "no configured site" in caught.value.problems[0].message


def test_own_json_format_carries_sources_moodle_events_cannot():
    item = {
        "user_id": "55",
        "course": {"id": "42", "shortname": "WHMIS-2026"},
        "completion_state": "complete",
        "source": "equivalency",
        "completed_at": "2026-10-01T10:30:00-04:00",
    }
    [record] = map_batch("lrx", item, SITE, NOW).records
    assert record["source"] == "equivalency"
    assert record["completed_at"] == COMPLETED


def test_own_json_format_problems():
    item = {
        "site": "another-site",
        "user_id": "",
        "course": {"id": "42"},
        "completion_state": "done",
        "source": "supporting_documentation",
        "completed_at": "2026-10-01T10:30:00",
    }
    with pytest.raises(InvalidInput) as caught:
        map_batch("lrx", [item], SITE, NOW)
    assert [p.path for p in caught.value.problems] == [
        "[0].site",
        "[0].user_id",
        "[0].completion_state",
        "[0].activity",
        "[0].completed_at",
    ]


def test_empty_batch_is_refused():
    with pytest.raises(InvalidInput, match="empty"):
        map_batch("moodle", [], SITE, NOW)


def test_ids_that_would_make_ambiguous_kafka_keys_are_refused():
    # site "a" + user "b/c" would share the key "a/b/c" with site "a/b" + user "c".
    with pytest.raises(InvalidInput) as caught:
        map_batch("moodle", course_completed(relateduserid="b/c"), SITE, NOW)
    assert [p.path for p in caught.value.problems] == ["relateduserid"]
    assert "'/'" in caught.value.problems[0].message
