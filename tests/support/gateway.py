"""A fake of the gateway's publisher: the gateway over real HTTP, without a broker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FakePublisher:
    """Records what the gateway would have written to Kafka."""

    def __init__(self) -> None:
        self.records: list[Mapping[str, Any]] = []
        self.profiles: list[Mapping[str, Any]] = []

    async def publish_records(self, records: Any) -> None:
        self.records.extend(records)

    async def publish_profiles(self, profiles: Any) -> None:
        self.profiles.extend(profiles)

    async def publish_course_recipients(self, value: Any) -> None:
        raise AssertionError("not used here")
