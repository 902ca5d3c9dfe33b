"""What the emulator remembers: accepted records, answered batches, the request log."""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.cmars.contract import RecordStatus, rfc3339
from connectors.doubles.cmars_emulator.faults import EmulatorConfig, Faults

log = logging.getLogger(__name__)


@dataclass
class _Held:
    """A record CMaRS accepted."""

    record: dict[str, Any]
    batch_id: str
    accepted_at: datetime
    duplicates: int = 0
    visible: bool = False


@dataclass(frozen=True)
class Answer:
    """The answer to a batch, replayed for its Idempotency-Key while its records match."""

    fingerprint: str
    body: dict[str, Any]


class CmarsState:
    """Everything the emulator remembers: accepted records, answered batches, the request log."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.faults = Faults(**asdict(config.faults))
        self.started = time.monotonic()
        self.rng = random.Random(config.seed)
        self.records: dict[str, _Held] = {}
        self.answers: dict[str, Answer] = {}
        self.duplicates_seen = 0
        self.replays = 0
        self.requests: deque[dict[str, Any]] = deque(maxlen=200_000)
        self._recent: deque[float] = deque()

    def uptime(self) -> float:
        return time.monotonic() - self.started

    def over_rate(self) -> bool:
        """True if this request makes more than rate_limit requests in the last second."""
        if not self.faults.rate_limit:
            return False
        now = time.monotonic()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        self._recent.append(now)
        return len(self._recent) > self.faults.rate_limit

    def log_request(
        self, batch_id: str | None, records: int, status: int, retry_after: int | None = None
    ) -> None:
        self.requests.append(
            {
                "at": round(self.uptime(), 4),
                "batch_id": batch_id,
                "records": records,
                "status": status,
                "retry_after": retry_after,
            }
        )

    def outcome(self, record: dict[str, Any]) -> tuple[RecordStatus, str | None, str | None]:
        college = record["college"]
        if college not in self.config.supported_colleges:
            return (
                RecordStatus.REJECTED,
                "WS400",
                f"college {college} is not supported by CMaRS",
            )
        if self.config.roster is not None and record["oci_id"] not in self.config.roster:
            return RecordStatus.REJECTED, "WS401", f"no practitioner has OCI ID {record['oci_id']}"
        return RecordStatus.ACCEPTED, None, None

    def process(self, batch_id: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        results = []
        now = datetime.now(UTC)
        for record in records:
            status, code, message = self.outcome(record)
            held = self.records.get(record["record_id"])
            if status is RecordStatus.ACCEPTED and held is not None:
                held.duplicates += 1
                self.duplicates_seen += 1
                status, message = RecordStatus.DUPLICATE, f"already accepted in {held.batch_id}"
            elif status is RecordStatus.ACCEPTED:
                self.records[record["record_id"]] = _Held(record, batch_id, now)
            results.append(
                {"record_id": record["record_id"], "status": str(status), "code": code,
                 "message": message}
            )  # fmt: skip
        return {"batch_id": batch_id, "received_at": rfc3339(now), "results": results}

    def refresh(self) -> int:
        """Publish accepted records to queries, like CMaRS's daily refresh."""
        published = 0
        for held in self.records.values():
            if not held.visible:
                held.visible = True
                published += 1
        log.info("refresh published %d records", published)
        return published

    def inventory(self) -> dict[str, Any]:
        return {
            "accepted": len(self.records),
            "visible": sum(1 for h in self.records.values() if h.visible),
            "duplicates_seen": self.duplicates_seen,
            "batches": len(self.answers),
            "replays": self.replays,
            # Counted from the answers themselves: more than `accepted` would mean a
            # record was accepted as new twice, which idempotency must prevent.
            "acceptances": sum(
                1
                for answer in self.answers.values()
                for result in answer.body["results"]
                if result["status"] == RecordStatus.ACCEPTED
            ),
            "records": [
                {
                    "record_id": record_id,
                    "oci_id": held.record["oci_id"],
                    "source": held.record["source"],
                    "activity": held.record.get("activity"),
                    "batch_id": held.batch_id,
                    "accepted_at": rfc3339(held.accepted_at),
                    "duplicates": held.duplicates,
                    "visible": held.visible,
                }
                for record_id, held in self.records.items()
            ],
        }
