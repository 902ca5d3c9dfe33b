"""The composition root: the one place below the CLI that turns `Settings` into components.

Each component takes a small configuration of its own (or explicit arguments),
never the whole `Settings`; token and URL maps are parsed here, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from connectors.cmars.retry import RetryPolicy
from connectors.cmars.schedule import Schedule
from connectors.cmars.sink import SinkConfig
from connectors.doubles.cmars_emulator import EmulatorConfig, Faults
from connectors.gateway.app import GatewayConfig
from connectors.lms.publisher import LmsPublisher
from deploy.settings import Settings
from schemas.codec import Codec
from streams.kafka.connection import KafkaConnection
from streams.rules.colleges import DEFAULT_COLLEGES_FILE, CollegeRegistry
from streams.rules.recipients import RecipientDirectory
from streams.rules.reporting_period import ReportingCalendar
from streams.rules.routing import RoutingRules

if TYPE_CHECKING:  # the worker imports faust, which is slow: only `lrx worker` loads it
    from streams.worker.app import PipelineApp, WorkerConfig
    from streams.worker.observer import PipelineObserver

__all__ = [
    "admin_publisher",
    "clock",
    "faust_options",
    "pipeline_app",
    "routing_rules",
    "sink_config",
    "worker_config",
    "colleges",
    "emulator_config",
    "gateway_config",
    "ingest_publisher",
    "kafka_connection",
    "recipient_directory",
]


def kafka_connection(settings: Settings) -> KafkaConnection:
    """How every Kafka client of lrx connects: servers, security, credentials."""
    return KafkaConnection(
        bootstrap_servers=settings.bootstrap_servers,
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=settings.kafka_sasl_password,
        ssl_cafile=settings.kafka_ssl_cafile,
        ssl_certfile=settings.kafka_ssl_certfile,
        ssl_keyfile=settings.kafka_ssl_keyfile,
    )


def colleges(settings: Settings) -> CollegeRegistry:
    return CollegeRegistry.load(settings.colleges_file)


def recipient_directory(settings: Settings) -> RecipientDirectory:
    return RecipientDirectory.from_settings(settings.recipients, settings.recipient_aliases)


def ingest_publisher(settings: Settings, codec: Codec | None = None) -> LmsPublisher:
    """The publisher of LMS input: a write waits LRX_INGEST_KAFKA_TIMEOUT at most."""
    return LmsPublisher(
        kafka_connection(settings), timeout=settings.ingest_kafka_timeout, codec=codec
    )


def admin_publisher(settings: Settings, codec: Codec | None = None) -> LmsPublisher:
    """The publisher of the admin commands: a write waits LRX_ADMIN_KAFKA_TIMEOUT at most."""
    return LmsPublisher(
        kafka_connection(settings), timeout=settings.admin_kafka_timeout, codec=codec
    )


def gateway_config(settings: Settings) -> GatewayConfig:
    return GatewayConfig(
        kafka=kafka_connection(settings),
        site_of_token=MappingProxyType(settings.site_of_token()),
        site_urls=MappingProxyType(settings.site_url_map()),
        account_homepages=MappingProxyType(settings.account_homepage_map()),
        recipients=recipient_directory(settings),
        max_body=settings.gateway_max_body,
        ingest_timeout=settings.ingest_kafka_timeout,
        admin_timeout=settings.admin_kafka_timeout,
    )


def sink_config(settings: Settings) -> SinkConfig:
    """The CMaRS sink's: LRX_CMARS_URL with LRX_CMARS_TOKEN, or the local emulator."""
    url, token = settings.cmars_endpoint
    return SinkConfig(
        kafka=kafka_connection(settings),
        group_prefix=settings.sink_group,
        cmars_url=url,
        cmars_token=token,
        request_timeout=settings.cmars_request_timeout,
        schedule=Schedule.parse(settings.sink_schedule, settings.sink_timezone),
        policy=RetryPolicy(
            initial=settings.sink_retry_initial,
            cap=settings.sink_retry_cap,
            max_time=settings.sink_retry_max_time,
            auth_interval=settings.sink_auth_retry_interval,
        ),
        batch_records=settings.sink_batch_records,
        batch_bytes=settings.sink_batch_bytes,
        linger=settings.sink_linger,
        session_timeout=settings.sink_session_timeout,
        shutdown_grace=settings.sink_shutdown_grace,
    )


def emulator_config(settings: Settings) -> EmulatorConfig:
    registry = CollegeRegistry.load(settings.emulator_colleges_file or DEFAULT_COLLEGES_FILE)
    roster = None
    if settings.emulator_roster:
        lines = Path(settings.emulator_roster).read_text(encoding="utf-8").splitlines()
        roster = frozenset(line.strip() for line in lines if line.strip())
    outages = []
    for window in settings.emulator_outages:
        start, sep, duration = window.partition("+")
        try:
            outages.append((float(start), float(start) + float(duration)))
        except ValueError:
            raise ValueError(
                f"LRX_EMULATOR_OUTAGES: {window!r} is not START+DURATION in seconds"
            ) from None
        if not sep:
            raise ValueError(f"LRX_EMULATOR_OUTAGES: {window!r} is not START+DURATION")
    return EmulatorConfig(
        token=settings.emulator_token,
        supported_colleges=frozenset(c.code for c in registry.enabled()),
        roster=roster,
        refresh=settings.emulator_refresh,
        timezone=settings.sink_timezone,
        faults=Faults(
            error_rate=settings.emulator_error_rate,
            latency=settings.emulator_latency,
            rate_limit=settings.emulator_rate_limit,
            retry_after=settings.emulator_retry_after,
            auth_failure=settings.emulator_auth_failure,
            outages=outages,
        ),
    )


def routing_rules(settings: Settings) -> RoutingRules:
    return RoutingRules(
        colleges=colleges(settings),
        directory=recipient_directory(settings),
        calendar=ReportingCalendar.parse(settings.period_start, settings.period_timezone),
    )


def worker_config(settings: Settings) -> WorkerConfig:
    from streams.worker.app import WorkerConfig

    return WorkerConfig(
        app_id=settings.app_id,
        faust_options=MappingProxyType(faust_options(settings)),
        datadir=settings.run_dir / "faust" / settings.app_id,
        kafka=kafka_connection(settings),
        read_timeout=settings.pipeline_read_timeout,
        recipients=settings.recipients,
        rules=routing_rules(settings),
        topic_partitions=settings.topic_partitions,
        batch_size=settings.pipeline_batch_size,
        batch_wait=settings.pipeline_batch_wait,
        sweep_interval=settings.pending_sweep_interval,
    )


def pipeline_app(
    settings: Settings,
    clock_now: Callable[[], datetime] | None = None,
    observer: PipelineObserver | None = None,
) -> PipelineApp:
    """The worker's Faust app, with the pipeline it drives."""
    from streams.worker.app import PipelineApp

    return PipelineApp(worker_config(settings), clock_now or clock(settings), observer)


def faust_options(settings: Settings) -> dict[str, Any]:
    """faust.App keyword arguments from our settings."""
    options: dict[str, Any] = {
        "broker": [f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
        "store": settings.store,
        "autodiscover": False,
        "processing_guarantee": "at_least_once",
        "stream_wait_empty": True,
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.replication_factor,
        "topic_disable_leader": True,
        "table_standby_replicas": 0,
        "consumer_auto_offset_reset": "earliest",
        # A batch's outputs are sent together and then awaited, which waits out the
        # linger once per batch: kept short.
        "producer_linger": 0.005,
        "producer_max_batch_size": 256 * 1024,
        "broker_session_timeout": settings.worker_session_timeout,
        "broker_heartbeat_interval": settings.worker_session_timeout / 5,
        "datadir": str(settings.run_dir / "faust" / settings.app_id),
        "web_enabled": settings.worker_web_port > 0,
        "web_port": settings.worker_web_port or 6066,
        "web_host": "127.0.0.1",
    }
    credentials = _credentials(settings)
    if credentials is not None:
        options["broker_credentials"] = credentials
    return options


def _credentials(settings: Settings) -> Any:
    import faust  # slow to import, and only the worker needs it

    client = kafka_connection(settings).client_options()
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=client.get("ssl_context"),
        )
    if protocol == "SSL":
        return faust.SSLCredentials(client["ssl_context"])
    return None


def clock(settings: Settings) -> Callable[[], datetime]:
    """The real clock, or one started at LRX_PIPELINE_CLOCK that runs on from there."""
    if not settings.pipeline_clock:
        return lambda: datetime.now(UTC)
    start = datetime.fromisoformat(settings.pipeline_clock)
    if start.tzinfo is None:
        raise ValueError(f"LRX_PIPELINE_CLOCK={settings.pipeline_clock!r} needs a time zone")
    began = time.monotonic()
    return lambda: datetime.fromtimestamp(start.timestamp() + time.monotonic() - began, UTC)
