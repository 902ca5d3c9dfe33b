"""The CMaRS push contract (openapi.yaml) in Python: request records, batch ids and answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from connectors.cmars.errors import TransientFailure
from schemas.codec.checks import UUID_TEXT
from schemas.errors import DataError

__all__ = [
    "CONTRACT_FILE",
    "BATCHES_PATH",
    "MalformedRecord",
    "ROUTED_FIELDS",
    "RecordStatus",
    "RecordResult",
    "batch_id_of",
    "request_record",
    "batch_body",
    "record_json",
    "parse_batch_result",
    "rfc3339",
]

CONTRACT_FILE = Path(__file__).with_name("openapi.yaml")
BATCHES_PATH = "/lrx/v1/batches"

# Fixed forever: batch ids derived from it must stay the same across releases,
# or a batch resent after an upgrade would look new to CMaRS.
_BATCH_NAMESPACE = uuid.UUID("6f1d2c4e-8a61-5b0e-9c4a-2f3b1d7e5a90")


class MalformedRecord(DataError):
    """A RoutedRecord lacks what the contract needs; `field` names what is missing or wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class RecordStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class RecordResult:
    """CMaRS's answer for one record of a batch."""

    record_id: str
    status: RecordStatus
    code: str | None = None
    message: str | None = None


def batch_id_of(record_ids: Iterable[str]) -> str:
    """The batch id of a set of records: the same records always give the same id.

    It is the Idempotency-Key, so a batch resent after a crash is recognised.
    """
    return str(uuid.uuid5(_BATCH_NAMESPACE, "\n".join(sorted(set(record_ids)))))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The fields of a RoutedRecord that request_record and the sink read: the sink decodes
# only these (Codec.projection), so a field used here must be listed here.
ROUTED_FIELDS = (
    "record_id",
    "recipient",
    "oci_id",
    "period",
    "record.site",
    "record.course.id",
    "record.course.shortname",
    "record.completed_at",
    "record.source",
    "record.activity",
)

# What was completed, as CMaRS is told (contract 1.2.0): an xAPI statement is a
# transport; the completion it carried is a course completion (its activity
# statements arrive as activity_completion already).
_KIND_OF_SOURCE = {"xapi": "course_completion"}


def _activity(record: Mapping[str, Any]) -> dict[str, Any] | None:
    activity = record.get("activity")
    if not activity:
        return None
    return {"cmid": activity["cmid"], "name": activity.get("name"),
            "module": activity.get("modname")}  # fmt: skip


def request_record(routed: Mapping[str, Any]) -> dict[str, Any]:
    """The contract's LearningRecord for a decoded RoutedRecord."""
    # Fast path for the well-formed records that are nearly all of them; on any
    # doubt the checked path below names the field that is wrong.
    try:
        record, oci = routed["record"], routed["oci_id"]
        course = record["course"]
        request = {
            "record_id": routed["record_id"],
            "oci_id": oci["canonical"],
            "college": oci["college"],
            "licence": oci["licence"],
            "site": record["site"],
            "course": {"id": course["id"], "shortname": course["shortname"]},
            "completed_at": rfc3339(record["completed_at"]),
            "source": _KIND_OF_SOURCE.get(record["source"], record["source"]),
            "period": routed["period"],
        }
        strings = (
            *oci.values(), course["id"], course["shortname"], record["site"],
            request["record_id"], request["source"], request["period"],
        )  # fmt: skip
        activity = record.get("activity")
        if activity:
            request["activity"] = _activity(record)
            strings += (activity["cmid"],)
        if all(type(v) is str for v in strings) and UUID_TEXT.fullmatch(request["record_id"]):
            return request
    except (KeyError, TypeError, AttributeError):
        pass
    return _checked_request_record(routed)


def _checked_request_record(routed: Mapping[str, Any]) -> dict[str, Any]:
    record = _field(routed, "record", Mapping)
    oci = _field(routed, "oci_id", Mapping)
    course = _field(record, "record.course", Mapping)
    completed_at = _field(record, "record.completed_at", datetime)
    record_id = _field(routed, "record_id", str)
    if not UUID_TEXT.fullmatch(record_id):
        raise MalformedRecord("record_id", f"{record_id!r} is not a UUID")
    source = str(_field(record, "record.source", str))
    request = {
        "record_id": record_id,
        "oci_id": _field(oci, "oci_id.canonical", str),
        "college": _field(oci, "oci_id.college", str),
        "licence": _field(oci, "oci_id.licence", str),
        "site": _field(record, "record.site", str),
        "course": {
            "id": _field(course, "record.course.id", str),
            "shortname": _field(course, "record.course.shortname", str),
        },
        "completed_at": rfc3339(completed_at),
        "source": _KIND_OF_SOURCE.get(source, source),
        "period": _field(routed, "period", str),
    }
    if record.get("activity"):
        _field(record["activity"], "record.activity.cmid", str)
        request["activity"] = _activity(record)
    return request


def _field(container: Mapping[str, Any], path: str, kind: type) -> Any:
    name = path.rsplit(".", 1)[-1]
    if name not in container or container[name] is None:
        raise MalformedRecord(path, "is missing")
    value = container[name]
    if not isinstance(value, kind):
        raise MalformedRecord(path, f"is {type(value).__name__}, expected {kind.__name__}")
    return value


def record_json(request: Mapping[str, Any]) -> bytes:
    """One contract record as compact UTF-8 JSON; the sink encodes each once and reuses it."""
    # orjson: a tenth of json.dumps's time, the same compact, non-ASCII-escaping output.
    return orjson.dumps(request)


def batch_body(batch_id: str, records: list[bytes], sent_at: datetime) -> bytes:
    """The BatchRequest JSON, assembled from records already encoded with record_json."""
    head = orjson.dumps({"batch_id": batch_id, "sent_at": rfc3339(sent_at)})
    return b"".join((head[:-1], b',"records":[', b",".join(records), b"]}"))


_STATUSES = {str(status): status for status in RecordStatus}


def parse_batch_result(payload: bytes, record_ids: Iterable[str]) -> dict[str, RecordResult]:
    """Each record id's result from a 200 answer.

    An answer we cannot read is a TransientFailure: retrying is safe (the batch id
    makes it idempotent), while dead-lettering would blame the records for it.
    """
    statuses = _STATUSES
    try:
        document = orjson.loads(payload)
        results = {}
        for item in document["results"]:
            record_id = str(item["record_id"])
            code, message = item.get("code"), item.get("message")
            # They go into receipts and dead letters as Avro strings; orjson has already
            # refused the one string Avro could not write (a lone surrogate).
            if not (code is None or type(code) is str) or not (
                message is None or type(message) is str
            ):
                raise TypeError(f"result of {record_id}: code and message must be strings")
            # A dict lookup, not RecordStatus(...): the enum call costs more than the rest.
            results[record_id] = RecordResult(record_id, statuses[item["status"]], code, message)
    except (ValueError, KeyError, TypeError) as error:
        raise TransientFailure(f"unreadable 200 answer from CMaRS: {error!r}", 200) from None
    missing = [rid for rid in record_ids if rid not in results]
    if missing:
        raise TransientFailure(
            f"CMaRS answered 200 without results for {len(missing)} record(s), e.g. {missing[0]}",
            200,
        )
    return results
