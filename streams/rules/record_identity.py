"""Record identity: one deterministic id per completion, however it reached us.

The id is a UUIDv5, in a fixed namespace, of the completion's identity:

- site, user id, course id: who completed what (a Moodle user id is unique only
  within its site);
- the completion time, truncated to whole seconds, because Moodle stores
  `timecompleted` in seconds while an xAPI timestamp may carry milliseconds;
- the kind of completion: `course` for a course completion, whether it came as a
  Moodle `course_completed` event or an xAPI statement; `activity:<cmid>` for an
  activity completion or supporting documentation (an activity of its own), so
  two activities completed in the same second differ; the source name for the
  sources that are never sent (CSV upload, equivalency, admin upload, legacy), so
  that such a record never shares an id with a real completion.

The transport (Moodle event, xAPI, replay) and the record's state (voided,
expiry, completion state) are not part of it: republishing, replaying or
voiding the same completion keeps its id, so a recipient never gets it twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.vocabulary import ACTIVITY_SOURCES, COURSE_SOURCES, Source

__all__ = ["RECORD_NAMESPACE", "record_id", "record_id_of", "completion_kind"]

# Never change: every id ever published, and so every dedupe, depends on it.
RECORD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://dualcode.ca/lrx/learning-record")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def completion_kind(source: Source | str, activity_cmid: str | None = None) -> str:
    """The kind part of the identity: "course", "activity:<cmid>" or a never-sent source."""
    source = Source(source)
    if source in COURSE_SOURCES:
        return "course"
    if source in ACTIVITY_SOURCES:
        if not activity_cmid:
            raise ValueError(f"a {source} record needs the activity's cmid for its identity")
        return f"activity:{activity_cmid}"
    return str(source)


def record_id(site: str, user_id: str, course_id: str, completed_at: datetime, kind: str) -> str:
    """The UUIDv5 (as a string) of one completion; `kind` comes from completion_kind()."""
    if completed_at.tzinfo is None or completed_at.utcoffset() is None:
        raise ValueError(f"completed_at {completed_at.isoformat()} has no time zone")
    seconds = (completed_at - _EPOCH) // timedelta(seconds=1)
    # JSON of a list keeps the parts apart whatever characters they contain.
    name = json.dumps([site, user_id, course_id, seconds, kind], ensure_ascii=False)
    return str(uuid.uuid5(RECORD_NAMESPACE, name))


def record_id_of(record: Mapping[str, Any]) -> str:
    """The record id of a LearningRecord dict (its own record_id field is ignored)."""
    activity = record.get("activity")
    cmid = activity.get("cmid") if activity else None
    kind = completion_kind(record["source"], cmid)
    return record_id(
        record["site"], record["user_id"], record["course"]["id"], record["completed_at"], kind
    )
