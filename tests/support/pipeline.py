"""Helpers of the pipeline tests: messages to publish, publishing, reading topics, waiting,
worker processes. The records themselves are built by tests/support/records.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer

from deploy.settings import REPO_ROOT, Settings
from deploy.wiring import kafka_connection
from schemas.topics import COURSE_RECIPIENTS, LEARNING_RECORDS, USER_PROFILES, course_key, user_key
from streams.kafka import topic_reader as topic_snapshot
from tests.support.polling import eventually
from tests.support.records import CODEC


def record_message(record: dict) -> tuple[str, bytes, bytes]:
    key = user_key(record["site"], record["user_id"])
    return LEARNING_RECORDS, key, CODEC.encode("LearningRecord", record)


def profile_message(value: dict) -> tuple[str, bytes, bytes]:
    key = user_key(value["site"], value["user_id"])
    return USER_PROFILES, key, CODEC.encode("UserProfile", value)


def subscription_message(value: dict) -> tuple[str, bytes, bytes]:
    key = course_key(value["site"], value["course_id"])
    return COURSE_RECIPIENTS, key, CODEC.encode("CourseRecipients", value)


async def publish(settings: Settings, messages: Iterable[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        **kafka_connection(settings).client_options(), linger_ms=5, acks="all"
    )
    await producer.start()
    try:
        futures = [await producer.send(t, value, key=key) for t, key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: dict | None
    headers: dict[str, bytes]


async def read_topic(settings: Settings, topic: str, decode: bool = True) -> list[Consumed]:
    """Every message of the topic up to its current end, decoded unless `decode` is False."""
    found: list[Consumed] = []
    for m in await topic_snapshot.read_topic(kafka_connection(settings), topic):
        value = None
        if m.value is not None:
            value = CODEC.decode_any(m.value)[1] if decode else {"raw": m.value}
        headers = dict(m.headers or ())
        found.append(Consumed(m.topic, m.partition, m.offset, m.key, value, headers))
    return found


def still_pending(messages: list[Consumed]) -> dict[str, dict]:
    """Record id -> LearningRecord of lrx.pending after its tombstones."""
    latest: dict[str, dict | None] = {}
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        latest[m.key.decode()] = m.value
    return {k: v for k, v in latest.items() if v is not None}


async def wait_for(
    condition: Callable[[], Awaitable[bool]], timeout: float, what: str, poll: float = 0.5
) -> None:
    """`eventually`, polling every half second by default: each poll reads whole topics."""
    await eventually(condition, timeout, what, poll)


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRX_")}
    env.update(
        LRX_BROKER_PORT=str(settings.broker_port),
        LRX_RUN_DIR=str(settings.run_dir),
        LRX_TOPIC_PARTITIONS=str(settings.topic_partitions),
    )
    if settings.kafka_bootstrap:
        env["LRX_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    env.update(extra)
    return env


class WorkerProcess:
    """`lrx worker` as a child process, stopped by its own PID."""

    def __init__(self, settings: Settings, log_path: Path, **env: str) -> None:
        self.env = settings_env(settings, **env)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("lrx")), "worker"],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        return self

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
