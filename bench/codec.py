"""Encode and decode LearningRecords with the Avro codec, beside json.dumps/json.loads.

Usage: .venv/bin/python -m bench.codec [--count N]. Prints records/s and bytes per record.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.codec import Codec

SOURCES = ("course_completion", "activity_completion", "xapi", "supporting_documentation")
START = datetime(2026, 4, 1, tzinfo=UTC)


def learning_records(count: int) -> list[dict[str, Any]]:
    """count varied, realistic records (a tenth of them activity completions)."""
    records = []
    for i in range(count):
        completed = START + timedelta(seconds=37 * i)
        records.append(
            {
                "record_id": str(uuid.UUID(int=i * 2654435761 % (1 << 128), version=5)),
                "site": ("sunnybrook", "uhn", "sinai")[i % 3],
                "user_id": str(10_000 + i % 50_000),
                "course": {"id": str(i % 400), "shortname": f"COURSE-{i % 400}", "idnumber": None},
                "activity": (
                    {"cmid": str(i % 9000), "name": "SCORM package", "modname": "scorm"}
                    if i % 10 == 0
                    else None
                ),
                "completion_state": "complete",
                "completed_at": completed,
                "source": SOURCES[i % 4],
                "voided": False,
                "expires_at": None,
                "origin": {
                    "moodle_event": "\\core\\event\\course_completed",
                    "moodle_object_id": str(i),
                    "xapi_statement_id": None,
                },
                "published_at": completed + timedelta(seconds=2),
            }
        )
    return records


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _each(items: list[bytes], decode: Callable[[bytes], Any]) -> None:
    # Decoded records are dropped at once: a million of them would hold gigabytes.
    for item in items:
        decode(item)


def timed(label: str, count: int, run: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - started
    print(f"  {label:<28} {count / elapsed:>12,.0f} records/s   ({elapsed:.2f} s)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="records (default 1,000,000)")
    count = parser.parse_args().count

    codec = Codec.default()
    records = learning_records(count)
    encode, decode = codec.encode, codec.decode
    print(f"{count:,} LearningRecords")

    avro = timed(
        "avro encode (lrx codec)", count, lambda: [encode("LearningRecord", r) for r in records]
    )
    timed(
        "avro decode (lrx codec)", count, lambda: _each(avro, lambda b: decode("LearningRecord", b))
    )
    text = timed(
        "json.dumps (default=isoformat)",
        count,
        lambda: [json.dumps(r, default=_json_default).encode() for r in records],
    )
    # json.loads gives ISO strings back, not datetimes: it does less work than the codec.
    timed("json.loads", count, lambda: _each(text, json.loads))

    print(
        f"  size: avro {sum(map(len, avro)) / count:.0f} B/record, "
        f"json {sum(map(len, text)) / count:.0f} B/record"
    )


if __name__ == "__main__":
    main()
