"""Moodle's standard event data (`\\core\\event\\base::get_data()`) to LearningRecords.

Two events carry completions:
- `\\core\\event\\course_completed`: the learner is `relateduserid` (`userid` is
  whoever triggered the event, often the cron user); objectid is the
  course_completions row.
- `\\core\\event\\course_module_completion_updated`: the activity is
  `contextinstanceid` (the cmid) and `other.completionstate` is 0 incomplete,
  1 complete, 2 complete-pass, 3 complete-fail. `other` may be an object, or
  text as Moodle's standard log stores it: JSON, or PHP-serialized (read strictly
  by connectors/lms/php_serialized.py, never evaluated).

The completion time is `course_completions.timecompleted`, which event data does
not carry: the LMS plugin adds it as the extension field `timecompleted`; without
it we fall back to `timecreated`. Optional extension fields `courseshortname`,
`courseidnumber`, `activityname` and `modname` fill in what event data lacks.
Every other event is acknowledged and ignored (the caller counts them).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from connectors.lms.php_serialized import PhpSerializedError, unserialize
from connectors.lms.problems import FieldReader, at
from schemas.vocabulary import CompletionState, Source
from streams.rules.record_identity import record_id_of

__all__ = ["COURSE_COMPLETED", "MODULE_COMPLETION_UPDATED", "learning_record_from_event"]

COURSE_COMPLETED = "\\core\\event\\course_completed"
MODULE_COMPLETION_UPDATED = "\\core\\event\\course_module_completion_updated"

COMPLETION_STATES = {
    0: CompletionState.INCOMPLETE,
    1: CompletionState.COMPLETE,
    2: CompletionState.COMPLETE_PASS,
    3: CompletionState.COMPLETE_FAIL,
}


def learning_record_from_event(
    event: FieldReader, site: str, now: datetime
) -> dict[str, Any] | None:
    """The LearningRecord an event carries, or None for events lrx ignores.

    Problems are added to `event.problems`; the caller raises them for the batch.
    """
    name = event.text("eventname")
    if name not in (COURSE_COMPLETED, MODULE_COMPLETION_UPDATED):
        return None
    before = len(event.problems)
    learner = event.identifier("relateduserid")
    course_id = event.identifier("courseid")
    object_id = event.text("objectid", required=False)
    completed_at = event.epoch_seconds("timecompleted", required=False)
    if completed_at is None:
        completed_at = event.epoch_seconds("timecreated")

    activity = None
    state = CompletionState.COMPLETE
    source = Source.COURSE_COMPLETION
    if name == MODULE_COMPLETION_UPDATED:
        source = Source.ACTIVITY_COMPLETION
        cmid = event.text("contextinstanceid")
        activity = {
            "cmid": cmid,
            "name": event.text("activityname", required=False),
            "modname": event.text("modname", required=False),
        }
        other = _other(event)
        if other is not None:
            code = other.integer("completionstate")
            if code is not None and code not in COMPLETION_STATES:
                other.problem("completionstate", f"{code} is not 0, 1, 2 or 3")
            state = COMPLETION_STATES.get(code, state)

    if len(event.problems) > before:
        return None
    record = {
        "record_id": "",
        "site": site,
        "user_id": learner,
        "course": {
            "id": course_id,
            "shortname": event.text("courseshortname", required=False) or course_id,
            "idnumber": event.text("courseidnumber", required=False),
        },
        "activity": activity,
        "completion_state": state,
        "completed_at": completed_at,
        "source": source,
        "voided": False,
        "expires_at": None,
        "origin": {"moodle_event": name, "moodle_object_id": object_id, "xapi_statement_id": None},
        "published_at": now,
    }
    record["record_id"] = record_id_of(record)
    return record


def _other(event: FieldReader) -> FieldReader | None:
    """`other` as get_data() gives it (an object), or as Moodle's log stores it: JSON text
    (the log's jsonformat) or PHP-serialized text."""
    value = event.data.get("other") if isinstance(event.data, dict) else None
    if not isinstance(value, str):
        return event.mapping("other")
    try:
        decoded = json.loads(value) if value.lstrip()[:1] in ("{", "[") else unserialize(value)
    except (ValueError, PhpSerializedError) as error:
        event.problem("other", f"cannot be read as JSON or PHP-serialized text: {error}")
        return None
    if isinstance(decoded, list) and not decoded:
        decoded = {}  # PHP's empty array, written by json_encode as []
    if not isinstance(decoded, dict):
        event.problem("other", "must hold an object (an array with keys)")
        return None
    return FieldReader(decoded, at(event.path, "other"), event.problems)
