"""A CMaRS emulator: a real HTTP server that honours connectors/cmars/openapi.yaml.

It stands in for CMaRS in local runs, tests and benchmarks: it checks the token
and every record, answers WS400 for colleges CMaRS does not support and WS401
for practitioners missing from its optional roster, is idempotent by batch id
and by record id, publishes accepted records only at its daily refresh, and
injects faults (5xx, latency, outages, 429 with Retry-After, refused tokens).
`create_app(config)` builds it; all state lives on the app, none in globals.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from connectors.cmars.contract import (
    BATCHES_PATH,
    CONTRACT_FILE,
    RecordStatus,
    rfc3339,
)
from connectors.cmars.schedule import Schedule
from schemas.vocabulary import SENT_SOURCES

__all__ = ["EmulatorConfig", "Faults", "CmarsState", "create_app", "STATE"]

log = logging.getLogger(__name__)

_COLLEGE = re.compile(r"^[A-Z]{2}-[A-Z]{2}-[A-Z]{2,12}$")
_LICENCE = re.compile(r"^[0-9A-Za-z]+$")
_PERIOD = re.compile(r"^[0-9]{4}(-[0-9]{2})?$")  # 2026-27, or 2026 for a calendar year
_REQUIRED = ("record_id", "oci_id", "college", "licence", "site", "course", "completed_at")


@dataclass
class Faults:
    """Faults in force; POST /admin/faults changes them while the emulator runs."""

    error_rate: float = 0.0
    latency: float = 0.0
    rate_limit: float = 0.0
    retry_after: int = 1
    auth_failure: bool = False
    outages: list[tuple[float, float]] = field(default_factory=list)  # [start, end) since start

    def change(self, changes: dict[str, Any], uptime: float) -> None:
        """Apply a FaultChange document; ValueError names the field that cannot be used."""
        for name, value in changes.items():
            if name == "outage_for":
                seconds = _number(name, value)
                self.outages.append((uptime, uptime + seconds))
            elif name in ("error_rate", "latency", "rate_limit"):
                number = _number(name, value)
                if name == "error_rate" and number > 1:
                    raise ValueError("error_rate: must be between 0 and 1")
                setattr(self, name, number)
            elif name == "retry_after":
                self.retry_after = int(_number(name, value))
            elif name == "auth_failure":
                if not isinstance(value, bool):
                    raise ValueError("auth_failure: must be true or false")
                self.auth_failure = value
            else:
                raise ValueError(f"{name}: not a fault the emulator knows")

    def in_outage(self, uptime: float) -> bool:
        return any(start <= uptime < end for start, end in self.outages)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name}: must be a number, at least 0")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class EmulatorConfig:
    """What the emulator is told; deploy/wiring.py reads it from the LRX_EMULATOR_* settings."""

    token: str
    supported_colleges: frozenset[str]
    timezone: str  # of the refresh schedule
    roster: frozenset[str] | None = None  # None: every valid OCI ID is a known practitioner
    refresh: str = ""  # cron expression of the daily refresh; empty: only /admin/refresh
    faults: Faults = field(default_factory=Faults)
    max_batch_records: int = 1000
    max_body_bytes: int = 5_000_000
    seed: int | None = None


@dataclass
class _Held:
    """A record CMaRS accepted."""

    record: dict[str, Any]
    batch_id: str
    accepted_at: datetime
    duplicates: int = 0
    visible: bool = False


@dataclass(frozen=True)
class _Answer:
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
        self.answers: dict[str, _Answer] = {}
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
                    "batch_id": held.batch_id,
                    "accepted_at": rfc3339(held.accepted_at),
                    "duplicates": held.duplicates,
                    "visible": held.visible,
                }
                for record_id, held in self.records.items()
            ],
        }


STATE = web.AppKey("cmars_state", CmarsState)


def _json(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(document), status=status, headers=headers, content_type="application/json"
    )


def _error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    headers = extra.pop("headers", None)
    return _json({"code": code, "message": message, **extra}, status, headers)


def _check_token(request: web.Request, state: CmarsState) -> web.Response | None:
    if state.faults.auth_failure:
        return _error(401, "unauthorized", "the token has expired (emulated auth failure)")
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return _error(401, "unauthorized", "a bearer token is required")
    if header.removeprefix("Bearer ").strip() != state.config.token:
        return _error(403, "forbidden", "this token may not deliver learning records")
    return None


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
    if not isinstance(college, str) or not _COLLEGE.match(college):
        found.append(("college", "must be COUNTRY-PROVINCE-ACRONYM, e.g. CA-ON-CPSO"))
    if not isinstance(licence, str) or not _LICENCE.match(licence):
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


def _fingerprint(records: list[dict[str, Any]]) -> str:
    return hashlib.sha256(orjson.dumps(records, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def post_batch(request: web.Request) -> web.Response:
    state = request.app[STATE]
    faults = state.faults
    key = request.headers.get("Idempotency-Key")
    if faults.in_outage(state.uptime()):
        state.log_request(key, 0, 503)
        return _error(503, "unavailable", "CMaRS is down (emulated outage)")
    refused = _check_token(request, state)
    if refused is not None:
        state.log_request(key, 0, refused.status)
        return refused
    if state.over_rate():
        state.log_request(key, 0, 429, faults.retry_after)
        return _error(
            429, "rate_limited", f"more than {faults.rate_limit:g} requests per second",
            headers={"Retry-After": str(faults.retry_after)},
        )  # fmt: skip
    body = await request.read()
    if len(body) > state.config.max_body_bytes:
        state.log_request(key, 0, 413)
        return _error(413, "too_large", f"body over {state.config.max_body_bytes} bytes")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        state.log_request(key, 0, 400)
        return _error(400, "malformed", f"body is not JSON: {error}")
    records = document.get("records") if isinstance(document, dict) else None
    count = len(records) if isinstance(records, list) else 0
    if count > state.config.max_batch_records:
        state.log_request(key, count, 413)
        return _error(413, "too_large", f"over {state.config.max_batch_records} records")
    problems = validate_batch(document, key)
    if problems:
        state.log_request(key, count, 400)
        return _error(400, "malformed", f"{len(problems)} problem(s) in the batch", errors=problems)
    assert key is not None and isinstance(records, list)
    fault = faults.error_rate and state.rng.random() < faults.error_rate
    if fault and state.rng.random() < 0.5:
        # Half the injected failures strike before the batch is processed ...
        status = state.rng.choice((500, 502, 503))
        state.log_request(key, count, status)
        return _error(status, "internal", "emulated failure before processing")
    fingerprint = _fingerprint(records)
    answer = state.answers.get(key)
    if answer is None:
        answer = _Answer(fingerprint, state.process(key, records))
        state.answers[key] = answer
    elif answer.fingerprint != fingerprint:
        state.log_request(key, count, 422)
        return _error(422, "idempotency_conflict", f"Idempotency-Key {key} was another batch")
    else:
        state.replays += 1
    if faults.latency:
        await asyncio.sleep(faults.latency)
    if fault:
        # ... and half after: processed, but the answer is lost, as on a real network.
        status = state.rng.choice((500, 502, 503))
        state.log_request(key, count, status)
        return _error(status, "internal", "emulated failure after processing")
    state.log_request(key, count, 200)
    return _json(answer.body)


async def practitioner_records(request: web.Request) -> web.Response:
    state = request.app[STATE]
    refused = _check_token(request, state)
    if refused is not None:
        return refused
    oci_id = request.match_info["oci_id"].strip().upper()
    college, _, licence = oci_id.rpartition("-")
    if not _COLLEGE.match(college) or not _LICENCE.match(licence):
        return _error(400, "WS400", f"{oci_id} is not an OCI ID CMaRS supports")
    if college not in state.config.supported_colleges:
        return _error(400, "WS400", f"college {college} is not supported by CMaRS")
    if state.config.roster is not None and oci_id not in state.config.roster:
        return _error(404, "WS401", f"no practitioner has OCI ID {oci_id}")
    held = [h.record for h in state.records.values() if h.visible and h.record["oci_id"] == oci_id]
    held.sort(key=lambda record: record["completed_at"])
    return _json({"oci_id": oci_id, "records": held})


async def contract(_: web.Request) -> web.Response:
    return web.Response(body=CONTRACT_FILE.read_bytes(), content_type="application/yaml")


async def admin_records(request: web.Request) -> web.Response:
    return _json(request.app[STATE].inventory())


async def admin_requests(request: web.Request) -> web.Response:
    return _json({"requests": list(request.app[STATE].requests)})


async def admin_refresh(request: web.Request) -> web.Response:
    return _json({"published": request.app[STATE].refresh()})


async def admin_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.method == "POST":
        try:
            changes = orjson.loads(await request.read())
            if not isinstance(changes, dict):
                raise ValueError("(body): must be a JSON object")
            state.faults.change(changes, state.uptime())
        except ValueError as error:
            return _error(400, "malformed", str(error))
        log.info("faults now %s", state.faults)
    return _json(asdict(state.faults))


async def _daily_refresh(app: web.Application) -> AsyncIterator[None]:
    """Run the refresh on its cron schedule while the app runs."""
    state = app[STATE]
    task = None
    if state.config.refresh:
        schedule = Schedule.parse(state.config.refresh, state.config.timezone)

        async def refresh_forever() -> None:
            while True:
                now = datetime.now(UTC)
                await asyncio.sleep((schedule.next_window(now) - now).total_seconds())
                state.refresh()

        task = asyncio.create_task(refresh_forever())
    yield
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def create_app(config: EmulatorConfig) -> web.Application:
    # Bodies up to twice the limit reach the handler, which answers 413 in the contract's shape.
    app = web.Application(client_max_size=2 * config.max_body_bytes)
    app[STATE] = CmarsState(config)
    app.cleanup_ctx.append(_daily_refresh)
    app.router.add_post(BATCHES_PATH, post_batch)
    app.router.add_get("/lrx/v1/practitioners/{oci_id}/records", practitioner_records)
    app.router.add_get("/lrx/v1/openapi.yaml", contract)
    app.router.add_get("/admin/records", admin_records)
    app.router.add_get("/admin/requests", admin_requests)
    app.router.add_post("/admin/refresh", admin_refresh)
    app.router.add_get("/admin/faults", admin_faults)
    app.router.add_post("/admin/faults", admin_faults)
    return app
