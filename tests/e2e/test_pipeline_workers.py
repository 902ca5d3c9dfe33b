"""Two workers in one group split the partitions and, together, decide like one.

The second worker joins while records are still arriving (the test asserts it), so
the partitions move between them mid-stream (a rebalance), and a profile fix
published after the split releases held records on whichever worker owns them.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import pytest

from deploy.topic_provisioning import apply_catalogue
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
from tests.support.records import course_recipients, mixed_records, profile

pytestmark = pytest.mark.kafka

RECORDS = 6_000
USERS = 200
ENV = {"LRX_APP_ID": "lrx-two-workers", "LRX_PIPELINE_CLOCK": "2026-11-20T12:00:00+00:00"}
ASSIGNED = re.compile(rf"assigned {re.escape(LEARNING_RECORDS)} partitions \[([\d, ]*)\]")


def last_assignment(worker: WorkerProcess) -> set[int]:
    found = ASSIGNED.findall(worker.log_path.read_text())
    return {int(p) for p in found[-1].split(",") if p.strip()} if found else set()


async def test_two_workers_split_partitions_and_agree_with_one(fresh_broker, tmp_path: Path):
    settings = fresh_broker()
    await apply_catalogue(settings)
    profiles, records, routed, ineligible, pending = mixed_records(RECORDS, USERS, seed=2)
    # A third of the records first; the rest go on arriving, 100 every half second,
    # from the moment the second worker starts, so that it joins mid-stream.
    first_part, rest = records[: RECORDS // 3], records[RECORDS // 3 :]
    await publish(
        settings,
        [subscription_message(course_recipients(f"c{n}", ["CMaRS"])) for n in range(7)]
        + [profile_message(p) for p in profiles]
        + [record_message(r) for r in first_part],
    )

    async def keep_publishing() -> None:
        for start in range(0, len(rest), 100):
            await publish(settings, [record_message(r) for r in rest[start : start + 100]])
            await asyncio.sleep(0.5)

    async def outputs() -> tuple[Counter, Counter, dict]:
        outbox = await read_topic(settings, outbox_topic("cmars"), decode=False)
        rejected = await read_topic(settings, INELIGIBLE, decode=False)
        return (
            Counter(m.headers["lrx-record-id"].decode() for m in outbox),
            Counter(m.key.decode() for m in rejected),
            still_pending(await read_topic(settings, PENDING, decode=False)),
        )

    first = WorkerProcess(settings, tmp_path / "worker-a.log", **ENV).start()
    second = WorkerProcess(settings, tmp_path / "worker-b.log", **ENV)
    try:

        async def first_started() -> bool:
            return len(await read_topic(settings, outbox_topic("cmars"), decode=False)) > 0

        await wait_for(first_started, 90, "the first worker to route records")
        second.start()
        stream = asyncio.create_task(keep_publishing())

        async def split() -> bool:
            a, b = last_assignment(first), last_assignment(second)
            return bool(a) and bool(b) and not a & b and len(a | b) == settings.topic_partitions

        await wait_for(split, 90, "the two workers to split the partitions")
        assert not stream.done(), "the stream ended before the second worker joined"
        await stream

        # Users u0, u20, ... have no OCI ID; give half of them one now.
        fixed = [p for p in profiles if not p["oci_id"]][::2]
        await publish(
            settings, [profile_message(profile(p["user_id"], "CA-ON-CMO-4242")) for p in fixed]
        )
        fixed_users = {p["user_id"] for p in fixed}
        released = {r["record_id"] for r in records if r["user_id"] in fixed_users} & pending

        async def all_decided() -> bool:
            outbox, rejected, held = await outputs()
            return (
                set(outbox) == routed | released
                and len(rejected) == len(ineligible)
                and (set(held) == pending - released)
            )

        await wait_for(all_decided, 180, "every record decided", poll=1)
        assert first.alive() and second.alive()
        assert last_assignment(first) and last_assignment(second)
    finally:
        first.stop()
        second.stop()
    outbox, rejected, held = await outputs()
    assert released, "the profile fix released nothing: the test lost its point"
    assert outbox == Counter(routed | released), "each routed record exactly once"
    assert rejected == Counter(ineligible)
    assert set(held) == pending - released
