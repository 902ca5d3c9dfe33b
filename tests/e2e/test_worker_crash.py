"""A worker whose Kafka goes away mid-stream exits, to restart from its committed offsets.

The README promises it: an error that is not about one record's data crashes the
worker. Here the broker is stopped under a real `lrx worker` process; the
process must end with a non-zero code within LRX_PIPELINE_READ_TIMEOUT (plus
Faust's shutdown), and its log must not flood while it waits.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from deploy.broker import EmbeddedBroker
from deploy.topic_provisioning import apply_catalogue
from schemas.topics import outbox_topic
from tests.support.pipeline import (
    WorkerProcess,
    profile_message,
    publish,
    read_topic,
    record_message,
    subscription_message,
    wait_for,
)
from tests.support.records import course_recipients, mixed_records

pytestmark = pytest.mark.kafka

RECORDS = 20_000


async def test_a_worker_exits_when_its_kafka_goes_away_mid_stream(fresh_broker, tmp_path: Path):
    settings = fresh_broker()
    await apply_catalogue(settings)
    profiles, records, *_ = mixed_records(RECORDS, 400, seed=9)
    await publish(
        settings,
        [subscription_message(course_recipients(f"c{n}", ["CMaRS"])) for n in range(7)]
        + [profile_message(p) for p in profiles]
        + [record_message(r) for r in records],
    )
    env = {
        "LRX_APP_ID": "lrx-crash",
        "LRX_PIPELINE_CLOCK": "2026-11-20T12:00:00+00:00",
        "LRX_PIPELINE_READ_TIMEOUT": "10",
    }
    worker = WorkerProcess(settings, tmp_path / "worker.log", **env).start()
    try:

        async def mid_stream() -> bool:
            return len(await read_topic(settings, outbox_topic("cmars"), decode=False)) > 500

        await wait_for(mid_stream, 120, "the worker to be mid-stream", poll=0.2)
        EmbeddedBroker(settings).stop()
        stopped, log_size = time.monotonic(), worker.log_path.stat().st_size
        deadline = stopped + 90
        while worker.alive():
            assert time.monotonic() < deadline, "the worker kept running without its Kafka:\n" + (
                worker.log_tail()
            )
            time.sleep(1)
        print(f"worker exited {time.monotonic() - stopped:.0f}s after its broker stopped")
        assert worker.process.returncode != 0, worker.log_tail()
        assert "Kafka has not answered for" in worker.log_path.read_text()
        # Reconnect failures are throttled (deploy/log_throttle.py): once they wrote ~1 MB/s.
        grown = worker.log_path.stat().st_size - log_size
        assert grown < 1_000_000, f"the log grew {grown} bytes while Kafka was away"
    finally:
        worker.stop()
