"""`lrx broker` against a real, throwaway broker: idempotent start, data survives restart."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deploy.broker import free_port_pair

pytestmark = pytest.mark.kafka


def lrx(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lrx"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def broker_env(tmp_path):
    """Environment for an lrx broker of this test's own; stopped afterwards whatever happens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRX_")}
    env |= {"LRX_BROKER_PORT": str(free_port_pair()), "LRX_RUN_DIR": str(tmp_path / "run")}
    yield env
    lrx(env, "broker", "stop")


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        while len(values) < count:
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, f"only {len(values)} of {count} messages came back"
            values += [m.value for messages in batch.values() for m in messages]
        return values
    finally:
        await consumer.stop()


def test_start_twice_succeeds_and_stop_start_keeps_messages(broker_env):
    bootstrap = f"127.0.0.1:{broker_env['LRX_BROKER_PORT']}"

    first = lrx(broker_env, "broker", "start")
    assert first.returncode == 0, first.stderr
    assert "started" in first.stdout
    again = lrx(broker_env, "broker", "start")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout

    status = lrx(broker_env, "broker", "status")
    assert status.returncode == 0
    assert f"address: {bootstrap}" in status.stdout
    assert broker_env["LRX_RUN_DIR"] in status.stdout

    values = [f"kept {i}".encode() for i in range(5)]
    asyncio.run(_produce(bootstrap, "survivors", values))

    stopped = lrx(broker_env, "broker", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    down = lrx(broker_env, "broker", "status")
    assert down.returncode == 3 and "down" in down.stdout
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(bootstrap[10:])), 1):
        pass

    restarted = lrx(broker_env, "broker", "start")
    assert restarted.returncode == 0, restarted.stderr
    assert asyncio.run(_read_all(bootstrap, "survivors", 5)) == values


def test_start_failure_reports_the_broker_log(broker_env):
    # Occupy the client port so the broker cannot bind it.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(broker_env["LRX_BROKER_PORT"])))
        squatter.listen()
        failed = lrx(broker_env | {"LRX_BROKER_START_TIMEOUT": "30"}, "broker", "start")
    assert failed.returncode != 0
    assert "Last lines of" in failed.stderr
    assert "broker.log" in failed.stderr
    assert lrx(broker_env, "broker", "status").returncode == 3


def test_stop_without_a_broker_says_so(broker_env):
    result = lrx(broker_env, "broker", "stop")
    assert result.returncode == 0
    assert "no broker running" in result.stdout


def test_stop_leaves_a_process_that_reused_the_recorded_pid_alone(broker_env):
    # Any other process now holds the PID the folder recorded (as after a reboot).
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        home = Path(broker_env["LRX_RUN_DIR"]) / f"kafka-{broker_env['LRX_BROKER_PORT']}"
        home.mkdir(parents=True)
        (home / "broker.pid").write_text(f"{stranger.pid}\n")

        result = lrx(broker_env, "broker", "stop")

        assert result.returncode == 0 and "no broker running" in result.stdout
        assert stranger.poll() is None, "lrx broker stop killed a process that is not its broker"
        assert not (home / "broker.pid").exists(), "the stale PID file is cleared"
    finally:
        stranger.kill()
        stranger.wait()
