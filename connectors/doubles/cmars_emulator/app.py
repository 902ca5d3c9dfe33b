"""The emulator's HTTP handlers and `create_app`, which wires them to a CmarsState."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from connectors.cmars.contract import BATCHES_PATH, CONTRACT_FILE
from connectors.cmars.schedule import Schedule
from connectors.doubles.cmars_emulator.faults import EmulatorConfig
from connectors.doubles.cmars_emulator.state import Answer, CmarsState
from connectors.doubles.cmars_emulator.validation import COLLEGE, LICENCE, validate_batch

log = logging.getLogger(__name__)

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
        answer = Answer(fingerprint, state.process(key, records))
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
    if not COLLEGE.match(college) or not LICENCE.match(licence):
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
