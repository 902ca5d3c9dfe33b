"""The composition root: the one place below the CLI that turns `Settings` into components.

Each component takes a small configuration of its own (or explicit arguments),
never the whole `Settings`; token and URL maps are parsed here, once.
"""

from __future__ import annotations

from types import MappingProxyType

from connectors.gateway.app import GatewayConfig
from connectors.lms.publisher import LmsPublisher
from deploy.settings import Settings
from schemas.codec import Codec
from streams.kafka.connection import KafkaConnection
from streams.rules.colleges import CollegeRegistry
from streams.rules.recipients import RecipientDirectory

__all__ = [
    "admin_publisher",
    "colleges",
    "gateway_config",
    "ingest_publisher",
    "kafka_connection",
    "recipient_directory",
]


def kafka_connection(settings: Settings) -> KafkaConnection:
    return settings.kafka_connection()


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
        recipients=recipient_directory(settings),
        max_body=settings.gateway_max_body,
        ingest_timeout=settings.ingest_kafka_timeout,
        admin_timeout=settings.admin_kafka_timeout,
    )
