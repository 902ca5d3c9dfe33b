"""What a well-formed BatchRequest is, as CMaRS checks it before processing."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from schemas.vocabulary import SENT_SOURCES

COLLEGE = re.compile(r"^[A-Z]{2}-[A-Z]{2}-[A-Z]{2,12}$")
LICENCE = re.compile(r"^[0-9A-Za-z]+$")
_PERIOD = re.compile(r"^[0-9]{4}(-[0-9]{2})?$")  # 2026-27, or 2026 for a calendar year
_REQUIRED = ("record_id", "oci_id", "college", "licence", "site", "course", "completed_at")


def validate_batch(document: Any, key: str | None) -> list[dict[str, str]]:
    """Every problem of a BatchRequest, each naming its field; empty if it is well formed."""
    if not isinstance(document, dict):
        return [{"field": "(body)", "message": "must be a JSON object"}]
    problems = []
    batch_id = document.get("batch_id")
    if not _is_uuid(batch_id):
        problems.append({"field": "batch_id", "message": "must be a UUID"})
    elif key != batch_id:
        problems.append({"field": "Idempotency-Key", "message": "must equal batch_id"})
    if not isinstance(document.get("sent_at"), str) or _timestamp(document["sent_at"]) is None:
        problems.append({"field": "sent_at", "message": "must be an RFC 3339 date-time"})
    records = document.get("records")
    if not isinstance(records, list) or not records:
        problems.append({"field": "records", "message": "must be a non-empty list"})
        return problems
    for i, record in enumerate(records):
        problems += [
            {"field": f"records[{i}].{name}", "message": message}
            for name, message in _record_problems(record)
        ]
    return problems


def _record_problems(record: Any) -> list[tuple[str, str]]:
    if not isinstance(record, dict):
        return [("(record)", "must be an object")]
    missing = [name for name in (*_REQUIRED, "source", "period") if name not in record]
    if missing:
        return [(name, "is required") for name in missing]
    found = []
    if not _is_uuid(record["record_id"]):
        found.append(("record_id", "must be a UUID"))
    college, licence, oci_id = record["college"], record["licence"], record["oci_id"]
    if not isinstance(college, str) or not COLLEGE.match(college):
        found.append(("college", "must be COUNTRY-PROVINCE-ACRONYM, e.g. CA-ON-CPSO"))
    if not isinstance(licence, str) or not LICENCE.match(licence):
        found.append(("licence", "must be letters and digits only"))
    if oci_id != f"{college}-{licence}":
        found.append(("oci_id", f"must be college-licence, {college}-{licence}"))
    if not isinstance(record["site"], str) or not record["site"]:
        found.append(("site", "must be a non-empty string"))
    course = record["course"]
    if not isinstance(course, dict) or not isinstance(course.get("id"), str) or not course["id"]:
        found.append(("course.id", "must be a non-empty string"))
    elif not isinstance(course.get("shortname"), str):
        found.append(("course.shortname", "must be a string"))
    if not isinstance(record["completed_at"], str) or _timestamp(record["completed_at"]) is None:
        found.append(("completed_at", "must be an RFC 3339 date-time"))
    if record["source"] not in SENT_SOURCES:
        found.append(("source", f"must be one of {sorted(map(str, SENT_SOURCES))}"))
    if not isinstance(record["period"], str) or not _PERIOD.match(record["period"]):
        found.append(("period", "must be a label such as 2026-27, or 2026 for a calendar year"))
    activity = record.get("activity")
    if activity is not None and not (
        isinstance(activity, dict) and isinstance(activity.get("cmid"), str) and activity["cmid"]
    ):
        found.append(("activity.cmid", "must be a non-empty string"))
    return found


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def _timestamp(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
