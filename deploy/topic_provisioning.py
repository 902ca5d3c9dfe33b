"""Applies the topic catalogue to a cluster, and reports where the cluster drifted from it."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from deploy.settings import Settings
from deploy.wiring import kafka_connection
from schemas.topics import Topic, catalogue

__all__ = ["TopicState", "apply_catalogue", "describe_catalogue", "settings_catalogue"]


@dataclass
class TopicState:
    topic: Topic
    exists: bool
    partitions: int | None = None
    configs: dict[str, str] = field(default_factory=dict)

    @property
    def drift(self) -> list[str]:
        """Human-readable differences between the cluster and the catalogue."""
        if not self.exists:
            return ["missing"]
        found = []
        if self.partitions != self.topic.partitions:
            found.append(f"partitions {self.partitions} (catalogue {self.topic.partitions})")
        for key, wanted in self.topic.configs().items():
            actual = self.configs.get(key)
            if actual != wanted:
                found.append(f"{key}={actual} (catalogue {wanted})")
        return found


def settings_catalogue(settings: Settings) -> list[Topic]:
    return catalogue(settings.topic_partitions, settings.recipients)


async def describe_catalogue(settings: Settings) -> list[TopicState]:
    topics = settings_catalogue(settings)
    async with _admin(settings) as admin:
        return await _describe(admin, topics)


async def apply_catalogue(settings: Settings, dry_run: bool = False) -> list[tuple[str, str]]:
    """Create missing topics and reset drifted configs. Returns (topic, action) pairs.

    Partition counts are reported, never changed: adding partitions would move
    keys and break the co-partitioning of streams with their tables.
    """
    topics = settings_catalogue(settings)
    actions: list[tuple[str, str]] = []
    async with _admin(settings) as admin:
        states = await _describe(admin, topics)
        missing = [s.topic for s in states if not s.exists]
        if missing and not dry_run:
            response = await admin.create_topics(
                [
                    NewTopic(
                        t.name,
                        num_partitions=t.partitions,
                        replication_factor=settings.replication_factor,
                        topic_configs=t.configs(),
                    )
                    for t in missing
                ]
            )
            for name, code, *rest in response.topic_errors:
                error = for_code(code)
                if code and error is not TopicAlreadyExistsError:
                    raise error(f"creating topic {name}: {rest[0] if rest else ''}")
        actions += [(t.name, "create") for t in missing]
        for state in states:
            if not state.exists or not state.drift:
                continue
            config_drift = [d for d in state.drift if not d.startswith("partitions")]
            if config_drift:
                if not dry_run:
                    await admin.alter_configs(
                        [
                            ConfigResource(
                                ConfigResourceType.TOPIC, state.topic.name, state.topic.configs()
                            )
                        ]
                    )
                actions.append((state.topic.name, "reset " + "; ".join(config_drift)))
            if len(config_drift) < len(state.drift):
                actions.append((state.topic.name, "left alone: " + state.drift[0]))
    return actions


async def _describe(admin: AIOKafkaAdminClient, topics: list[Topic]) -> list[TopicState]:
    metadata = {t["topic"]: t for t in await admin.describe_topics([t.name for t in topics])}
    states = []
    existing = []
    for topic in topics:
        meta = metadata.get(topic.name)
        exists = bool(meta) and meta["error_code"] == 0
        state = TopicState(topic, exists, len(meta["partitions"]) if exists else None)
        states.append(state)
        if exists:
            existing.append(state)
    if existing:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, s.topic.name) for s in existing]
        )
        by_name = {s.topic.name: s for s in existing}
        for response in responses:
            for resource in response.to_object()["resources"]:
                state = by_name[resource["resource_name"]]
                state.configs = {
                    c["config_names"]: c["config_value"] for c in resource["config_entries"]
                }
    return states


class _admin:
    """An admin client that is started on entry and always closed on exit."""

    def __init__(self, settings: Settings):
        self.client = AIOKafkaAdminClient(**kafka_connection(settings).client_options())

    async def __aenter__(self) -> AIOKafkaAdminClient:
        await self.client.start()
        return self.client

    async def __aexit__(self, *exc_info) -> None:
        await self.client.close()
