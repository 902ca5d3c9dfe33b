"""What an LMS sends: a Moodle course_completed event, a module completion, an xAPI statement.

One learner (Moodle user 55) of course 42 of sunnybrook, who completed it at `COMPLETED`.
"""

from __future__ import annotations

from datetime import UTC, datetime

COMPLETED = datetime(2026, 10, 1, 14, 30, tzinfo=UTC)


def course_completed(**changes) -> dict:
    event = {
        "eventname": "\\core\\event\\course_completed",
        "component": "core",
        "action": "completed",
        "target": "course",
        "objecttable": "course_completions",
        "objectid": 991,
        "userid": 2,  # the cron user that triggered it, not the learner
        "relateduserid": 55,
        "courseid": 42,
        "timecreated": int(COMPLETED.timestamp()) + 300,
        "timecompleted": int(COMPLETED.timestamp()),
        "courseshortname": "WHMIS-2026",
        "other": {"relateduserid": 55},
    }
    return event | changes


def module_completion(state: int, cmid: int = 77) -> dict:
    return {
        "eventname": "\\core\\event\\course_module_completion_updated",
        "objectid": 5,
        "userid": 55,
        "relateduserid": 55,
        "courseid": 42,
        "contextinstanceid": cmid,
        "timecreated": int(COMPLETED.timestamp()),
        "modname": "scorm",
        "other": {"relateduserid": 55, "completionstate": state},
    }


def statement(**changes) -> dict:
    value = {
        "id": "4c1a6b3e-6a8e-4f61-9d8e-3f2b1c0a9e77",
        "actor": {"account": {"homePage": "https://lms.sunnybrook.example", "name": "55"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {
            "id": "https://lms.sunnybrook.example/course/view.php?id=42",
            "definition": {"name": {"en": "WHMIS 2026"}},
        },
        "timestamp": "2026-10-01T14:30:00.250Z",
    }
    return value | changes
