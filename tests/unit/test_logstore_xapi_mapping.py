"""Statements exactly as Moodle's logstore_xapi builds them (tests/support/logstore_xapi.py,
checked against the plugin's own fixtures) become the records lrx needs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.lms.formats import LmsContext, map_batch
from connectors.lms.moodle_events import MODULE_COMPLETION_UPDATED
from connectors.lms.problems import InvalidInput
from connectors.lms.xapi_statements import statement_id_of
from schemas.codec import Codec
from tests.support import logstore_xapi as plugin
from tests.support.lms import module_completion

WWWROOT = "https://lms.sunnybrook.example"
SITE = LmsContext("sunnybrook", {"sunnybrook": WWWROOT})
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WHEN = datetime(2026, 10, 2, 9, 0, tzinfo=UTC)
RELEASES = [plugin.V5, plugin.CURRENT_4X, plugin.LEGACY_4X]
COURSE = {"wwwroot": WWWROOT, "user_id": 55, "course_id": 7, "course_fullname": "Fire Safety"}


def module(state: int, release: str = plugin.V5, **changes) -> dict:
    return plugin.module_completion_statement(
        **COURSE, cmid=33, modname="scorm", name="Fire Safety SCORM", state=state, time=WHEN,
        release=release, **changes,
    )  # fmt: skip


@pytest.mark.parametrize("release", RELEASES)
def test_a_course_completion_makes_a_course_record(release: str) -> None:
    statement = plugin.course_completed_statement(**COURSE, time=WHEN, release=release)
    [record] = map_batch("xapi", [statement], SITE, NOW).records
    assert (record["user_id"], record["course"]["id"], record["activity"]) == ("55", "7", None)
    assert record["course"]["shortname"] == "Fire Safety"
    assert (record["completion_state"], record["completed_at"]) == ("complete", WHEN)
    Codec.default().encode("LearningRecord", record)


@pytest.mark.parametrize("release", RELEASES)
def test_a_module_completion_makes_an_activity_record_of_the_course_named_in_its_context(
    release: str,
) -> None:
    [record] = map_batch("xapi", [module(1, release)], SITE, NOW).records
    assert record["source"] == "activity_completion"
    assert record["course"] == {"id": "7", "shortname": "Fire Safety"}
    assert record["activity"] == {"cmid": "33", "name": "Fire Safety SCORM", "modname": "scorm"}
    assert record["completion_state"] == "complete"
    Codec.default().encode("LearningRecord", record)


def test_the_xapi_module_record_is_the_same_record_as_the_moodle_event_of_that_completion() -> None:
    [from_xapi] = map_batch("xapi", [module(1)], SITE, NOW).records
    event = module_completion(1, cmid=33) | {"courseid": 7, "timecreated": int(WHEN.timestamp())}
    assert event["eventname"] == MODULE_COMPLETION_UPDATED
    [from_event] = map_batch("moodle", [event], SITE, NOW).records
    assert from_xapi["record_id"] == from_event["record_id"]


@pytest.mark.parametrize(
    ("state", "expected"),
    [(1, "complete"), (2, "complete_pass"), (3, "complete_fail"), (4, "complete_fail")],
)
def test_module_completion_states(state: int, expected: str) -> None:
    [record] = map_batch("xapi", [module(state)], SITE, NOW).records
    assert record["completion_state"] == expected


def test_an_undone_module_completion_and_a_viewed_statement_are_acknowledged_and_make_nothing():
    viewed = plugin.viewed_statement(**COURSE, time=WHEN, cmid=34, name="Policy")
    batch = map_batch("xapi", [module(0), viewed, plugin.viewed_statement(**COURSE, time=WHEN)],
                      SITE, NOW)  # fmt: skip
    assert (batch.records, batch.ignored) == ([], 3)


def test_a_batch_mixing_completions_with_viewed_statements_keeps_only_the_completions() -> None:
    statements = [
        plugin.viewed_statement(**COURSE, time=WHEN),
        module(2),
        plugin.viewed_statement(**COURSE, time=WHEN, cmid=33, modname="scorm"),
        plugin.course_completed_statement(**COURSE, time=WHEN),
    ]
    batch = map_batch("xapi", statements, SITE, NOW)
    assert [r["source"] for r in batch.records] == ["activity_completion", "xapi"]
    assert batch.ignored == 2


def test_a_module_statement_that_names_no_course_is_refused_naming_the_field() -> None:
    orphan = module(1)
    orphan["context"]["contextActivities"].pop("parent")
    with pytest.raises(InvalidInput) as caught:
        map_batch("xapi", [module(1), orphan], SITE, NOW)
    assert [p.path for p in caught.value.problems] == ["[1].context.contextActivities.parent"]


def test_a_statement_without_id_gets_the_same_id_each_time_it_comes() -> None:
    first, again = module(1), module(1)
    again["context"]["registration"] = "5d1f2b7e-0000-5000-8000-000000000001"  # another cron run
    assert "id" not in first
    assert statement_id_of(first) == statement_id_of(again)
    assert statement_id_of(first) != statement_id_of(module(2))
    assert statement_id_of({**first, "id": "given"}) == "given"
    [record] = map_batch("xapi", [first], SITE, NOW).records
    assert record["origin"]["xapi_statement_id"] == statement_id_of(first)


HOMEPAGE = "https://lms.sunnybrook.example/users"  # the plugin's configured account homepage


def test_with_send_username_the_actor_is_looked_up_by_username_in_the_site_s_profiles():
    statement = plugin.course_completed_statement(
        **COURSE, time=WHEN, username="DrSmith", account_homepage=HOMEPAGE
    )
    assert statement["actor"]["account"] == {"homePage": HOMEPAGE, "name": "DrSmith"}
    context = LmsContext("sunnybrook", {"sunnybrook": WWWROOT}, HOMEPAGE, {"drsmith": "55"})
    [record] = map_batch("xapi", [statement], context, NOW).records
    by_id = map_batch("xapi", [plugin.course_completed_statement(**COURSE, time=WHEN)], SITE, NOW)
    assert record["user_id"] == "55"
    assert record["record_id"] == by_id.records[0]["record_id"], "one completion, one id"


def test_an_unknown_username_is_refused_naming_the_field_and_what_to_do():
    statement = plugin.course_completed_statement(
        **COURSE, time=WHEN, username="nobody", account_homepage=HOMEPAGE
    )
    context = LmsContext("sunnybrook", {"sunnybrook": WWWROOT}, HOMEPAGE, {"drsmith": "55"})
    with pytest.raises(InvalidInput) as caught:
        map_batch("xapi", [statement], context, NOW)
    [problem] = caught.value.problems
    assert problem.path == "[0].actor.account.name"
    assert "lrx users import" in problem.message
