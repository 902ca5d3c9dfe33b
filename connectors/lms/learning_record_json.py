"""Our own LearningRecord in JSON (POST /v1/learning-records, `lrx publish --format lrx`).

This is how the LMS reports what Moodle events cannot: supporting documentation,
CSV uploads, equivalencies, admin uploads, legacy and voided records. Times are
ISO 8601 with a zone. The record id is always computed here, never taken from
the sender, so the same completion gets the same id on every path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.lms.problems import FieldReader
from schemas.vocabulary import ACTIVITY_SOURCES, CompletionState, Source
from streams.rules.record_identity import record_id_of

__all__ = ["learning_record_from_json", "user_profile_from_json"]


def learning_record_from_json(item: FieldReader, site: str, now: datetime) -> dict[str, Any] | None:
    before = len(item.problems)
    claimed_site = item.text("site", required=False)
    if claimed_site is not None and claimed_site != site:
        item.problem("site", f"{claimed_site!r} differs from the credential's site {site!r}")
    user_id = item.identifier("user_id")
    course = item.mapping("course")
    course_ref = None
    if course is not None:
        course_id = course.identifier("id")
        course_ref = {
            "id": course_id,
            "shortname": course.text("shortname", required=False) or course_id,
            "idnumber": course.text("idnumber", required=False),
        }
    activity = None
    if item.data.get("activity") is not None:
        reader = item.mapping("activity")
        if reader is not None:
            activity = {
                "cmid": reader.text("cmid"),
                "name": reader.text("name", required=False),
                "modname": reader.text("modname", required=False),
            }
    state = item.choice("completion_state", CompletionState)
    source = item.choice("source", Source)
    if source in ACTIVITY_SOURCES and not activity:
        item.problem("activity", f"required for source {source}")
    completed_at = item.iso_instant("completed_at")
    expires_at = item.iso_instant("expires_at", required=False)
    voided = item.boolean("voided")
    origin = {"moodle_event": None, "moodle_object_id": None, "xapi_statement_id": None}
    if item.data.get("origin") is not None:
        reader = item.mapping("origin")
        if reader is not None:
            origin = {key: reader.text(key, required=False) for key in origin}

    if len(item.problems) > before:
        return None
    record = {
        "record_id": "",
        "site": site,
        "user_id": user_id,
        "course": course_ref,
        "activity": activity,
        "completion_state": CompletionState(state),
        "completed_at": completed_at,
        "source": Source(source),
        "voided": voided,
        "expires_at": expires_at,
        "origin": origin,
        "published_at": now,
    }
    record["record_id"] = record_id_of(record)
    return record


def user_profile_from_json(item: FieldReader, site: str, now: datetime) -> dict[str, Any] | None:
    """A user profile snapshot (POST /v1/users): Moodle's user fields plus `ociid`."""
    before = len(item.problems)
    profile = {
        "site": site,
        "user_id": item.identifier("id"),
        "username": item.text("username"),
        "firstname": item.text("firstname", required=False),
        "lastname": item.text("lastname", required=False),
        "email": item.text("email", required=False),
        # Kept raw: the stream normalises it and says why when it cannot.
        "oci_id": item.text("ociid", required=False),
        "suspended": item.boolean("suspended"),
        "deleted": item.boolean("deleted"),
        "modified_at": (
            item.epoch_seconds("timemodified", required=False)
            if "timemodified" in item.data
            else now
        ),
    }
    if len(item.problems) > before:
        return None
    return profile
