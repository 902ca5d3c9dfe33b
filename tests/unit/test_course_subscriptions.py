"""Course subscriptions: the rules for building a value (`lrx recipients` itself is tested on a
real broker in tests/integration/test_recipients_cli.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.lms.course_subscriptions import course_recipients, with_recipient, without_recipient
from connectors.lms.problems import InvalidInput
from streams.rules.recipients import RecipientDirectory

AT = datetime(2026, 5, 1, tzinfo=UTC)
DIRECTORY = RecipientDirectory(["cmars", "acme"], {"tahsn": "cmars"})


def test_a_value_keeps_names_as_typed_and_each_recipient_once():
    value = course_recipients(
        "north", " c1 ", ["tahsn", "CMaRS", "acme"], ["12", "13", "12"], "ops", DIRECTORY, AT
    )
    assert value == {
        "site": "north", "course_id": "c1", "recipients": ["tahsn", "acme"],
        "required_activities": ["12", "13"], "changed_by": "ops", "changed_at": AT,
    }  # fmt: skip


def test_every_problem_of_a_value_is_reported_with_its_path():
    with pytest.raises(InvalidInput) as error:
        course_recipients("north", "", ["cmars", "nobody"], ["12", " "], "ops", DIRECTORY, AT)
    assert [str(p) for p in error.value.problems] == [
        "course_id: must not be empty",
        "recipients[1]: unknown recipient 'nobody'; known: cmars, acme, tahsn (= cmars)",
        "required_activities[1]: must not be empty",
    ]


def test_adding_keeps_activities_unless_given_and_removing_follows_aliases():
    first = with_recipient(None, "north", "c1", "tahsn", ["7"], "ops", DIRECTORY, AT)
    second = with_recipient(first, "north", "c1", "acme", None, "ops", DIRECTORY, AT)
    assert (second["recipients"], second["required_activities"]) == (["tahsn", "acme"], ["7"])
    third = without_recipient(second, "north", "c1", "CMARS", "ann", DIRECTORY, AT)
    assert (third["recipients"], third["changed_by"]) == (["acme"], "ann")
    with pytest.raises(InvalidInput, match="does not subscribe cmars"):
        without_recipient(third, "north", "c1", "tahsn", "ann", DIRECTORY, AT)
