"""An event's `other` as an object, as JSON text and as PHP-serialized text: the same record."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from connectors.lms.formats import LmsContext, map_batch
from connectors.lms.php_serialized import PhpSerializedError, unserialize
from connectors.lms.problems import InvalidInput
from tests.support.lms import module_completion

SITE = LmsContext("sunnybrook")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
# As logstore_standard_log stores other for a module completion (PHP serialize()).
SERIALIZED = 'a:3:{s:13:"relateduserid";i:55;s:10:"overrideby";N;s:15:"completionstate";i:2;}'


def record_of(other: object) -> dict:
    event = module_completion(2) | {"other": other}
    [record] = map_batch("moodle", [event], SITE, NOW).records
    return record


def test_other_as_an_object_as_json_text_and_as_php_serialized_text_gives_one_record() -> None:
    as_object = {"relateduserid": 55, "overrideby": None, "completionstate": 2}
    records = [record_of(as_object), record_of(json.dumps(as_object)), record_of(SERIALIZED)]
    assert {r["record_id"] for r in records} == {records[0]["record_id"]}
    assert {r["completion_state"] for r in records} == {"complete_pass"}


@pytest.mark.parametrize(
    "text",
    [
        'a:1:{s:15:"completionstate";i:2;',  # unterminated
        'a:1:{s:99:"completionstate";i:2;}',  # wrong string length
        'O:8:"stdClass":1:{s:1:"a";i:1;}',  # an object: never read
        "completionstate=2",
        'a:1:{s:15:"completionstate";i:2;}trailing',
        's:3:"abc";',  # a string, not an array
    ],
)
def test_other_text_that_cannot_be_read_is_a_400_naming_other(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        map_batch("moodle", [module_completion(2) | {"other": text}], SITE, NOW)
    assert [p.path for p in caught.value.problems] == ["[0].other"]


def test_the_serialized_forms_moodle_writes() -> None:
    assert unserialize("N;") is None
    assert unserialize("b:1;") is True and unserialize("b:0;") is False
    assert unserialize("i:-42;") == -42 and unserialize("d:0.5;") == 0.5
    assert unserialize('s:5:"héll";') == "héll"  # the length counts UTF-8 bytes
    assert unserialize('a:2:{i:0;s:1:"x";s:1:"k";a:0:{}}') == {0: "x", "k": {}}


@pytest.mark.parametrize(
    "text", ["b:2;", "i:1.5;", "a:1:{b:1;i:1;}", "a:" + "1:{i:0;a:" * 40 + "0:{}" + "}" * 40]
)
def test_what_moodle_does_not_write_is_refused(text: str) -> None:
    with pytest.raises(PhpSerializedError):
        unserialize(text)
