"""`lrx gateway`: the aiohttp app that takes LMS input and answers 202 only once Kafka has it.

Every endpoint needs a bearer token (LRX_INGEST_TOKENS); the token decides the site.
A batch is all or nothing: one bad item rejects the whole body with a 400 that
lists every problem with its path. Errors become HTTP answers in one middleware.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from connectors.gateway.json_body import read_json
from connectors.gateway.xapi_resource import statement_routes, xapi_version_middleware
from connectors.lms.course_subscriptions import (
    CourseRecipientsView,
    course_recipients,
    same_subscription,
)
from connectors.lms.formats import LmsContext, map_batch
from connectors.lms.learning_record_json import user_profile_from_json
from connectors.lms.problems import (
    LONE_SURROGATE,
    FieldReader,
    InvalidInput,
    Problem,
    is_unicode_text,
)
from connectors.lms.profile_directory import SiteUsers
from connectors.lms.publisher import LmsPublisher
from connectors.metrics import Metrics
from schemas.codec import Codec
from streams.kafka.connection import KafkaConnection
from streams.kafka.errors import KafkaUnavailable
from streams.rules.recipients import RecipientDirectory

__all__ = ["create_app", "GatewayConfig", "PUBLISHER", "CONFIG"]

log = logging.getLogger(__name__)

OPENAPI = Path(__file__).with_name("openapi.yaml")


@dataclass(frozen=True)
class GatewayConfig:
    """What the gateway needs, parsed once when the process starts."""

    kafka: KafkaConnection
    site_of_token: Mapping[str, str]  # bearer token -> site
    site_urls: Mapping[str, str]  # site -> its Moodle wwwroot, for xAPI actors
    account_homepages: Mapping[str, str]  # site -> the homePage of actors named by username
    recipients: RecipientDirectory
    max_body: int
    ingest_timeout: float  # a write's wait for Kafka before 503
    admin_timeout: float  # reading a course's current recipients


CONFIG = web.AppKey("config", GatewayConfig)
PUBLISHER = web.AppKey("publisher", LmsPublisher)
METRICS = web.AppKey("metrics", "GatewayMetrics")
CODEC = web.AppKey("codec", Codec)
COURSES = web.AppKey("courses", CourseRecipientsView)
USERS = web.AppKey("users", SiteUsers)
SITE = web.RequestKey("site", str)  # the site the bearer token belongs to

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = {"/healthz", "/readyz", "/openapi.yaml", "/metrics"}


class GatewayMetrics:
    """What ops watch on the gateway: what was stored, ignored and refused, and how fast."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.accepted = self.metrics.counter(
            "gateway_records_accepted", "Records stored in Kafka", ["kind"]
        )
        self.ignored = self.metrics.counter(
            "gateway_events_ignored", "Events or statements that carry no completion", ["format"]
        )
        self.rejected = self.metrics.counter(
            "gateway_requests_rejected", "Requests answered 4xx or 503", ["status"]
        )
        self.latency = self.metrics.histogram(
            "gateway_request_seconds", "Time to answer a request, Kafka write included", ["path"]
        )


def create_app(config: GatewayConfig, publisher: LmsPublisher | None = None) -> web.Application:
    """The gateway app. Pass a started publisher to share one; else the app owns its own."""
    app = web.Application(
        client_max_size=config.max_body,
        middlewares=[xapi_version_middleware, error_middleware, auth_middleware],
    )
    app[CONFIG] = config
    app[METRICS] = GatewayMetrics()
    app[CODEC] = Codec.default()
    if publisher is not None:
        app[PUBLISHER] = publisher
    else:
        app.cleanup_ctx.append(_publisher_context)
    app[COURSES] = CourseRecipientsView(config.kafka, config.admin_timeout, app[CODEC])
    app[USERS] = SiteUsers(config.kafka, config.admin_timeout, app[CODEC])
    app.on_cleanup.append(_stop_following_topics)
    app.router.add_post("/v1/learning-records", _completions("lrx"))
    app.router.add_post("/v1/moodle/events", _completions("moodle"))
    app.add_routes(statement_routes(_store_statements))
    app.router.add_post("/v1/users", post_users)
    app.router.add_put("/v1/courses/{course}/recipients", put_course_recipients)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/openapi.yaml", openapi)
    app[METRICS].metrics.add_route(app)
    return app


async def _publisher_context(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    async with LmsPublisher(config.kafka, timeout=config.ingest_timeout) as publisher:
        app[PUBLISHER] = publisher
        yield


async def _stop_following_topics(app: web.Application) -> None:
    await app[COURSES].close()
    await app[USERS].close()


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    site = _site_of_credential(request.headers.get("Authorization", ""), request.app[CONFIG])
    if site is None:
        basic = request.path.startswith("/xapi/")  # an LRS client such as logstore_xapi
        raise web.HTTPUnauthorized(
            text=json.dumps(
                {"error": "a valid site key and secret (Basic) or bearer token is required"}
            ),  # fmt: skip
            content_type="application/json",
            headers={"WWW-Authenticate": 'Basic realm="lrx"' if basic else 'Bearer realm="lrx"'},
        )
    request[SITE] = site
    return await handler(request)


def _site_of_credential(header: str, config: GatewayConfig) -> str | None:
    """The site of a bearer token, or of Basic key:secret where the key is the site and the
    secret that site's token (what an LRS client such as logstore_xapi sends)."""
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer":
        return config.site_of_token.get(credential.strip())
    if scheme.lower() != "basic":
        return None
    try:
        key, _, secret = base64.b64decode(credential.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    site = config.site_of_token.get(secret)
    return site if site is not None and hmac.compare_digest(site, key) else None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS]
    began = time.perf_counter()
    try:
        return await handler(request)
    except InvalidInput as error:
        metrics.rejected.labels("400").inc()
        return web.json_response(
            {"error": "invalid input", "errors": [p.as_json() for p in error.problems]},
            status=400,
        )
    except KafkaUnavailable as error:
        metrics.rejected.labels("503").inc()
        return web.json_response(
            {"error": f"not stored: {error}; retry later"},
            status=503,
            headers={"Retry-After": "5"},
        )
    except web.HTTPException as error:
        if error.status >= 400:
            metrics.rejected.labels(str(error.status)).inc()
        raise
    finally:
        if request.match_info.route.resource is not None:
            path = request.match_info.route.resource.canonical
            metrics.latency.labels(path).observe(time.perf_counter() - began)


async def _store_statements(request: web.Request, statements: object) -> None:
    """The xAPI resource's store: completions become records; the rest is counted."""
    config, site = request.app[CONFIG], request[SITE]
    homepage = config.account_homepages.get(site)
    user_ids = await request.app[USERS].user_ids(site) if homepage else {}
    context = LmsContext(site, config.site_urls, homepage, user_ids)
    batch = map_batch("xapi", statements, context, datetime.now(UTC))
    await request.app[PUBLISHER].publish_records(batch.records)
    request.app[METRICS].accepted.labels("learning_record").inc(len(batch.records))
    request.app[METRICS].ignored.labels("xapi").inc(batch.ignored)


def _completions(fmt: str) -> Handler:
    async def post_completions(request: web.Request) -> web.Response:
        context = LmsContext(request[SITE], request.app[CONFIG].site_urls)
        batch = map_batch(fmt, await read_json(request), context, datetime.now(UTC))
        await request.app[PUBLISHER].publish_records(batch.records)
        metrics = request.app[METRICS]
        metrics.accepted.labels("learning_record").inc(len(batch.records))
        metrics.ignored.labels(fmt).inc(batch.ignored)
        return web.json_response(
            {
                "accepted": len(batch.records),
                "ignored": batch.ignored,
                "record_ids": [r["record_id"] for r in batch.records],
            },
            status=202,
        )

    return post_completions


async def post_users(request: web.Request) -> web.Response:
    body = await read_json(request)
    items = body if isinstance(body, list) else [body]
    if not items:
        raise InvalidInput([Problem("", "the batch is empty")])
    now = datetime.now(UTC)
    profiles, problems = [], []
    for index, item in enumerate(items):
        reader = FieldReader(item, f"[{index}]" if isinstance(body, list) else "")
        profile = None if reader.problems else user_profile_from_json(reader, request[SITE], now)
        problems += reader.problems
        if profile is not None:
            profiles.append(profile)
    if problems:
        raise InvalidInput(problems)
    await request.app[PUBLISHER].publish_profiles(profiles)
    request.app[METRICS].accepted.labels("user_profile").inc(len(profiles))
    return web.json_response({"accepted": len(profiles)}, status=202)


async def put_course_recipients(request: web.Request) -> web.Response:
    """Replace a course's recipients and required activities (its LRX page in Moodle)."""
    config = request.app[CONFIG]
    reader = FieldReader(await read_json(request))
    recipients = _text_list(reader, "recipients")
    activities = _text_list(reader, "required_activities", required=False)
    changed_by = reader.text("changed_by", required=False) or f"gateway:{request[SITE]}"
    reader.raise_problems()
    value = course_recipients(
        request[SITE],
        request.match_info["course"],
        recipients,
        activities,
        changed_by,
        config.recipients,
        datetime.now(UTC),
    )
    # The live view, not a read of the whole topic per request (issue 10).
    courses = request.app[COURSES]
    before = await courses.current(request[SITE], value["course_id"])
    changed = before is None or not same_subscription(before, value)
    if changed:
        await request.app[PUBLISHER].publish_course_recipients(value)
        courses.remember(value)
    return web.json_response(
        {
            "course_id": value["course_id"],
            "recipients": value["recipients"],
            "required_activities": value["required_activities"],
            "changed": changed,
        }
    )


def _text_list(reader: FieldReader, field: str, required: bool = True) -> list:
    value = reader.data.get(field)
    if value is None:
        if required:
            reader.problem(field, "missing")
        return []
    if not isinstance(value, list):
        reader.problem(field, "must be an array of strings")
        return []
    for index, item in enumerate(value):
        if isinstance(item, str) and not is_unicode_text(item):
            reader.problem(f"{field}[{index}]", LONE_SURROGATE)
    return value


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when Kafka answers a metadata request, so a load balancer can route away."""
    client = request.app[PUBLISHER].producer.client
    try:
        async with asyncio.timeout(3):
            metadata = await client.fetch_all_metadata()
        ready = bool(metadata.brokers())
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        log.info("readyz: Kafka not answering: %r", error)
        ready = False
    return web.json_response(
        {"status": "ready" if ready else "kafka unavailable"}, status=200 if ready else 503
    )


async def openapi(request: web.Request) -> web.Response:
    return web.Response(text=OPENAPI.read_text(), content_type="application/yaml")
