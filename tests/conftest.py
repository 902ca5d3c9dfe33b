"""Shared fixtures of every kind of test (tests/unit, tests/integration, tests/e2e): the real
Kafka broker and settings that point at it. Helpers live in tests/support/.

`deploy/test.sh` starts the main broker before pytest; if it is not running,
the `settings` fixture starts it and stops it at the end. Tests that need a
cluster of their own (exact topic contents, broker restarts) use `fresh_broker`,
which starts a throwaway broker on free ports in a temporary folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy.broker import EmbeddedBroker, free_port_pair
from deploy.settings import Settings
from tests.support.kafka import unique


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    """Settings for the main test broker (LRX_BROKER_PORT, default 9092), started if needed."""
    settings = Settings.from_env()
    if not settings.uses_embedded_broker:
        yield settings
        return
    broker = EmbeddedBroker(settings)
    started_here = False
    if not broker.answers():
        broker.start()
        started_here = True
    yield settings
    if started_here:
        broker.stop()


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[Callable[[], Settings]]:
    """Factory: start a throwaway broker with empty data; returns its Settings."""
    started: list[EmbeddedBroker] = []

    def start() -> Settings:
        settings = Settings.from_env().replace(
            kafka_bootstrap="", broker_port=free_port_pair(), run_dir=tmp_path / "run"
        )
        broker = EmbeddedBroker(settings)
        broker.start()
        started.append(broker)
        return settings

    yield start
    for broker in started:
        broker.stop()


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    return unique
