"""Example values of each message, for tests, benchmarks and documentation.

Each function returns a record as the codec takes it (schemas/avro), valid as
it stands; keyword arguments change it, so a test can say only what differs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["learning_record", "routed_record", "delivery_receipt"]


def learning_record(**changes: Any) -> dict[str, Any]:
    """A LearningRecord: an activity completion, with every optional field filled."""
    record = {
        "record_id": "6f1c1d34-2f0a-5b7e-9a51-3c2d9a0b1e77",
        "site": "sunnybrook",
        "user_id": "1042",
        "course": {"id": "17", "shortname": "ACLS-2026", "idnumber": "ACLS"},
        "activity": {"cmid": "311", "name": "Supporting Documentation", "modname": "assign"},
        "completion_state": "complete_pass",
        "completed_at": datetime(2026, 5, 4, 13, 22, 10, 123000, tzinfo=UTC),
        "source": "activity_completion",
        "voided": False,
        "expires_at": datetime(2028, 5, 4, tzinfo=UTC),
        "origin": {
            "moodle_event": "\\core\\event\\course_module_completion_updated",
            "moodle_object_id": "90211",
            "xapi_statement_id": None,
        },
        "published_at": datetime(2026, 5, 4, 13, 22, 11, 5000, tzinfo=UTC),
    }
    record.update(changes)
    return record


def routed_record(
    n: int,
    *,
    recipient: str = "cmars",
    college: str = "CA-ON-CPSO",
    licence: str | None = None,
    site: str = "sunnybrook",
    period: str = "2026-27",
) -> dict[str, Any]:
    """The n-th of a series of RoutedRecords, as the stream processor writes them to an outbox.

    Each n is another user and record id of `site`; licences repeat every 997 records.
    """
    licence = licence if licence is not None else f"{10000 + n % 997:05d}"
    completed = datetime(2026, 5, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=n)
    record_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"lrx-test/{site}/{n}"))
    return {
        "record_id": record_id,
        "recipient": recipient,
        "oci_id": {"canonical": f"{college}-{licence}", "college": college, "licence": licence},
        "period": period,
        "routed_at": completed + timedelta(seconds=5),
        "record": {
            "record_id": record_id,
            "site": site,
            "user_id": str(n),
            "course": {"id": str(100 + n % 7), "shortname": f"ACLS-{n % 7}", "idnumber": None},
            "activity": None,
            "completion_state": "complete",
            "completed_at": completed,
            "source": "course_completion",
            "voided": False,
            "expires_at": None,
            "origin": {
                "moodle_event": "\\core\\event\\course_completed",
                "moodle_object_id": str(n),
                "xapi_statement_id": None,
            },
            "published_at": completed + timedelta(seconds=1),
        },
    }


def delivery_receipt(**changes: Any) -> dict[str, Any]:
    """A DeliveryReceipt: CMaRS accepted a record."""
    return {
        "record_id": "200cca00-2d0e-520a-96e9-ac8c5a615939",
        "recipient": "cmars",
        "batch_id": "6f1d2c4e-8a61-5b0e-9c4a-2f3b1d7e5a90",
        "delivered_at": datetime(2026, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
        "outcome": "accepted",
        "oci_id": "CA-ON-CPSO-12345",
        "message": None,
        **changes,
    }
