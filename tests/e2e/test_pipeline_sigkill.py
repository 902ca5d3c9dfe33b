"""A worker killed with SIGKILL mid-stream and restarted loses nothing and duplicates nothing.

20,000 records: most eligible, some incomplete (ineligible), some for users
without an OCI ID (pending). The worker is killed while it writes, between two
offset commits, so its successor handles again records whose outputs already
reached Kafka; the decision log must keep those outputs single.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from deploy.topic_provisioning import apply_catalogue
from deploy.wiring import kafka_connection
from schemas.topics import INELIGIBLE, LEARNING_RECORDS, PENDING, outbox_topic
from tests.support.pipeline import (
    WorkerProcess,
    profile_message,
    publish,
    read_topic,
    record_message,
    still_pending,
    subscription_message,
    wait_for,
)
from tests.support.records import course_recipients, mixed_records

pytestmark = pytest.mark.kafka

RECORDS = 20_000
USERS = 400
CLOCK = "2026-11-20T12:00:00+00:00"
APP_ID = "lrx-sigkill"


async def committed_offsets(settings) -> int:
    admin = AIOKafkaAdminClient(**kafka_connection(settings).client_options())
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(APP_ID)
    finally:
        await admin.close()
    return sum(o.offset for tp, o in offsets.items() if tp.topic == LEARNING_RECORDS)


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(fresh_broker, tmp_path: Path):
    settings = fresh_broker()
    await apply_catalogue(settings)
    profiles, records, routed, ineligible, pending = mixed_records(RECORDS, USERS)
    await publish(
        settings,
        [subscription_message(course_recipients(f"c{n}", ["CMaRS"])) for n in range(7)]
        + [profile_message(p) for p in profiles]
        + [record_message(r) for r in records],
    )
    env = {"LRX_APP_ID": APP_ID, "LRX_PIPELINE_CLOCK": CLOCK}

    async def outputs() -> tuple[Counter, Counter, dict]:
        # The pipeline's record-id header, so that polling need not decode 20,000 values.
        outbox = Counter(
            m.headers["lrx-record-id"].decode()
            for m in await read_topic(settings, outbox_topic("cmars"), decode=False)
        )
        rejected = Counter(
            m.key.decode() for m in await read_topic(settings, INELIGIBLE, decode=False)
        )
        held = still_pending(await read_topic(settings, PENDING, decode=False))
        return outbox, rejected, held

    first = WorkerProcess(settings, tmp_path / "worker-1.log", **env).start()
    try:

        async def mid_stream() -> bool:
            outbox = await read_topic(settings, outbox_topic("cmars"), decode=False)
            return len(outbox) >= RECORDS // 5

        await wait_for(mid_stream, 120, "the first worker to be mid-stream", poll=0.2)
        first.kill()
    finally:
        first.stop()
    outbox, rejected, held = await outputs()
    decided = sum(outbox.values()) + sum(rejected.values()) + len(held)
    committed = await committed_offsets(settings)
    assert decided < RECORDS, "the kill came after the whole stream: not mid-stream"
    # Outputs past the committed offsets are what a naive restart would write twice.
    assert committed < decided, "nothing to handle twice: the kill came right after a commit"
    print(f"killed after {decided} decisions, {committed} input offsets committed")

    second = WorkerProcess(settings, tmp_path / "worker-2.log", **env).start()
    try:

        async def all_decided() -> bool:
            outbox, rejected, held = await outputs()
            return len(outbox) + len(rejected) + len(held) >= RECORDS

        await wait_for(all_decided, 240, "every record to be decided", poll=1)
    finally:
        second.stop()
    outbox, rejected, held = await outputs()
    duplicated = {k: n for k, n in (outbox + rejected).items() if n > 1}
    assert not duplicated, f"{len(duplicated)} records written twice, e.g. {list(duplicated)[:3]}"
    assert set(outbox) == routed
    assert set(rejected) == ineligible
    assert set(held) == pending
    # Every hold counts, not only the latest per key: a record may be held, released
    # (its profile came) and routed, but never held twice.
    holds = Counter(
        m.key.decode()
        for m in await read_topic(settings, PENDING, decode=False)
        if m.value is not None
    )
    held_twice = {k: n for k, n in holds.items() if n > 1}
    assert not held_twice, f"{len(held_twice)} records held twice, e.g. {list(held_twice)[:3]}"
