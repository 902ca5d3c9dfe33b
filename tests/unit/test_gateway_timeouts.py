"""Which Kafka timeout each publisher waits: the gateway's the ingest one, admin commands the
admin one (the gateway's HTTP behaviour is tests/integration/test_gateway_fake.py)."""

from __future__ import annotations

import pytest

from deploy.settings import Settings
from deploy.wiring import admin_publisher, gateway_config, ingest_publisher


@pytest.mark.parametrize("ingest, admin", [(3.0, 30.0), (10.0, 2.5)])
async def test_admin_commands_wait_the_admin_timeout_and_the_gateway_the_ingest_one(ingest, admin):
    chosen = Settings().replace(ingest_kafka_timeout=ingest, admin_kafka_timeout=admin)
    assert admin_publisher(chosen).timeout == admin
    assert ingest_publisher(chosen).timeout == ingest
    assert gateway_config(chosen).ingest_timeout == ingest
