"""Builders of the records the pipeline reads: learning records, profiles, course subscriptions.

Plain values, no I/O. Two builders of a LearningRecord, for two kinds of test:

- `learning_record(user, course, completed)`: one of a series of records, each a
  distinct completion whose `record_id` is its own (`record_id_of`), as the gateway
  publishes them; the pipeline tests route, hold and count records by that id.
- `record_with(**changes)`: one fixed course completion (user 17, course 42, at
  `COMPLETED`, with a placeholder id) in which any field is replaced verbatim, even by
  a value the gateway would never publish; the eligibility and identity rules are
  tested one changed field at a time.

They are not one builder: the first recomputes the id from the fields, which would
make the second's verbatim changes recompute it too, and the second's defaults (one
user, one course, one instant) cannot make the first's series of distinct records.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.codec import Codec
from streams.rules.record_identity import record_id_of

CODEC = Codec.default()
SITE = "sunnybrook"
COMPLETED = datetime(2026, 9, 30, 15, 4, 5, tzinfo=UTC)  # when record_with() was completed


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def learning_record(
    user: str,
    course: str,
    completed: str,
    *,
    site: str = SITE,
    source: str = "course_completion",
    state: str = "complete",
    cmid: str | None = None,
    voided: bool = False,
    expires: str | None = None,
) -> dict[str, Any]:
    record = {
        "record_id": "",
        "site": site,
        "user_id": user,
        "course": {"id": course, "shortname": f"C{course}", "idnumber": None},
        "activity": {"cmid": cmid, "name": f"activity {cmid}", "modname": "scorm"}
        if cmid
        else None,
        "completion_state": state,
        "completed_at": at(completed),
        "source": source,
        "voided": voided,
        "expires_at": at(expires) if expires else None,
        "origin": {"moodle_event": None, "moodle_object_id": None, "xapi_statement_id": None},
        "published_at": datetime.now(UTC),
    }
    record["record_id"] = record_id_of(record)
    return record


def record_with(**changes: Any) -> dict[str, Any]:
    """The course completion of user 17 of course 42 at `COMPLETED`, with `changes`."""
    record: dict[str, Any] = {
        "record_id": "00000000-0000-0000-0000-000000000000",
        "site": "sunnybrook",
        "user_id": "17",
        "course": {"id": "42", "shortname": "IPAC", "idnumber": None},
        "activity": None,
        "completion_state": "complete",
        "completed_at": COMPLETED,
        "source": "course_completion",
        "voided": False,
        "expires_at": None,
        "origin": {"moodle_event": None, "moodle_object_id": None, "xapi_statement_id": None},
        "published_at": COMPLETED,
    }
    record.update(changes)
    return record


def profile(user: str, oci_id: str | None, *, site: str = SITE, deleted: bool = False) -> dict:
    return {
        "site": site,
        "user_id": user,
        "username": f"user{user}",
        "firstname": None,
        "lastname": None,
        "email": None,
        "oci_id": oci_id,
        "suspended": False,
        "deleted": deleted,
        "modified_at": datetime.now(UTC),
    }


def course_recipients(
    course: str, recipients: list[str], required: Iterable[str] = (), *, site: str = SITE
) -> dict:
    return {
        "site": site,
        "course_id": course,
        "recipients": recipients,
        "required_activities": list(required),
        "changed_by": "admin",
        "changed_at": datetime.now(UTC),
    }


def mixed_records(
    count: int, users: int, seed: int = 4
) -> tuple[list[dict], list[dict], set[str], set[str], set[str]]:
    """Profiles, records over courses c0-c6, and the ids expected routed, ineligible, pending.

    5% of users have no OCI ID (their records are held), 5% of records are incomplete.
    """
    rng = random.Random(seed)
    profiles = []
    for n in range(users):
        oci = "" if n % 20 == 0 else f"CA-ON-CPSO-{10000 + n}"  # 5% of users have none
        profiles.append(profile(f"u{n}", oci))
    records, routed, ineligible, pending = [], [], set(), set()
    start = datetime(2026, 4, 2, tzinfo=UTC)
    for n in range(count):
        user = rng.randrange(users)
        completed = (start + timedelta(minutes=n)).isoformat()
        state = "incomplete" if rng.random() < 0.05 else "complete"
        record = learning_record(f"u{user}", f"c{n % 7}", completed, state=state)
        records.append(record)
        if state == "incomplete":
            ineligible.add(record["record_id"])
        elif user % 20 == 0:
            pending.add(record["record_id"])
        else:
            routed.append(record["record_id"])
    return profiles, records, set(routed), ineligible, pending
