"""The topic catalogue is really applied: configs read back through the admin API match it.

What the catalogue says is checked without a broker in tests/unit/test_topic_catalogue_contents.py.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from deploy.topic_provisioning import apply_catalogue, describe_catalogue, settings_catalogue
from deploy.wiring import kafka_connection
from schemas.topics import LEARNING_RECORDS, catalogue
from tests.support.kafka import create_topic


@pytest.mark.kafka
async def test_applied_catalogue_reads_back_identical(fresh_broker):
    settings = fresh_broker()
    actions = await apply_catalogue(settings)
    assert {name for name, action in actions if action == "create"} == {
        t.name for t in settings_catalogue(settings)
    }

    admin = AIOKafkaAdminClient(**kafka_connection(settings).client_options())
    await admin.start()
    try:
        metadata = {t["topic"]: t for t in await admin.describe_topics()}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t.name) for t in settings_catalogue(settings)]
        )
    finally:
        await admin.close()
    actual = {
        r["resource_name"]: {c["config_names"]: c["config_value"] for c in r["config_entries"]}
        for response in responses
        for r in response.to_object()["resources"]
    }
    for topic in settings_catalogue(settings):
        assert len(metadata[topic.name]["partitions"]) == topic.partitions, topic.name
        for key, value in topic.configs().items():
            assert actual[topic.name][key] == value, (topic.name, key)

    # Applying again changes nothing.
    assert await apply_catalogue(settings) == []


@pytest.mark.kafka
async def test_drift_is_reported_and_configs_are_reset(fresh_broker):
    settings = fresh_broker()
    await apply_catalogue(settings)
    admin = AIOKafkaAdminClient(**kafka_connection(settings).client_options())
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    LEARNING_RECORDS,
                    {"cleanup.policy": "delete", "retention.ms": "1000"},
                )
            ]
        )
    finally:
        await admin.close()

    # Config changes reach the broker's metadata cache asynchronously.
    drift = await _drift_when(settings, lambda d: d[LEARNING_RECORDS])
    assert drift[LEARNING_RECORDS] == [
        f"retention.ms=1000 (catalogue {catalogue(1, [])[0].retention_ms})"
    ]
    assert all(not d for name, d in drift.items() if name != LEARNING_RECORDS)

    dry = await apply_catalogue(settings, dry_run=True)
    assert [name for name, _ in dry] == [LEARNING_RECORDS]
    assert any(s.drift for s in await describe_catalogue(settings)), "dry run changed the cluster"

    await apply_catalogue(settings)
    drift = await _drift_when(settings, lambda d: not any(d.values()))
    assert not any(drift.values())


async def _drift_when(settings, condition, timeout: float = 20.0) -> dict[str, list[str]]:
    """Describe the catalogue until `condition(drift by topic)` holds; fail at the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        drift = {s.topic.name: s.drift for s in await describe_catalogue(settings)}
        if condition(drift):
            return drift
        assert asyncio.get_running_loop().time() < deadline, f"drift still {drift}"
        await asyncio.sleep(0.2)


@pytest.mark.kafka
async def test_a_topic_with_other_partitions_is_reported_and_never_repartitioned(fresh_broker):
    settings = fresh_broker()
    wanted = next(t.partitions for t in settings_catalogue(settings) if t.name == LEARNING_RECORDS)
    await create_topic(settings, LEARNING_RECORDS, partitions=1)
    assert wanted > 1, "the catalogue must ask for more partitions than the topic has"

    actions = await apply_catalogue(settings)

    left_alone = [a for name, a in actions if name == LEARNING_RECORDS and "left alone" in a]
    assert left_alone == [f"left alone: partitions 1 (catalogue {wanted})"], actions
    admin = AIOKafkaAdminClient(**kafka_connection(settings).client_options())
    await admin.start()
    try:
        [found] = await admin.describe_topics([LEARNING_RECORDS])
    finally:
        await admin.close()
    assert len(found["partitions"]) == 1, "apply_catalogue changed a partition count"
    # And again: still reported, still untouched.
    assert (LEARNING_RECORDS, left_alone[0]) in await apply_catalogue(settings)
