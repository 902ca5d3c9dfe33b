"""Benchmark: the stream processor against a plain aiokafka passthrough, on a local broker.

    .venv/bin/python -m bench.pipeline              # 200,000 records on a throwaway broker
    .venv/bin/python -m bench.pipeline --count 20000 --latency-seconds 5
    .venv/bin/python -m bench.pipeline --profile /tmp/worker-profile.txt

It publishes N learning records (90% eligible, 10% spread over the reasons a
record is not sent), then times

- a plain aiokafka consume-to-produce passthrough of the same records (the
  ceiling for a Python consumer),
- a Faust agent that only decodes, takes and acks them (bench/faust_intake.py:
  the ceiling for anything built on Faust's stream machinery), and
- `lrx worker` deciding every record (outbox, ineligible or pending),

both from their first to their last output message, so process start-up is not
counted. Then, with the worker caught up, it publishes at a fixed rate
(default 2,000 records/s) and reports publish-to-outbox latency percentiles.
It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy.broker import EmbeddedBroker, free_port_pair
from deploy.settings import Settings
from deploy.topic_provisioning import apply_catalogue
from deploy.wiring import kafka_connection
from schemas.codec import Codec
from schemas.topics import (
    COURSE_RECIPIENTS,
    INELIGIBLE,
    LEARNING_RECORDS,
    PENDING,
    USER_PROFILES,
    course_key,
    outbox_topic,
    user_key,
)
from streams.kafka.topic_reader import partitions_of, read_topic
from streams.rules.record_identity import record_id_of

PASSTHROUGH = "bench.passthrough"
SITE = "bench"
USERS = 2_000
CODEC = Codec.default()


def _record(n: int, user: int, now: datetime, rng: random.Random) -> dict:
    kind = rng.random()
    course, state, source, voided = "c1", "complete", "course_completion", False
    completed = now - timedelta(days=1, seconds=n)
    # 10% not sent, spread over reasons; users 0-39 (2%) have no OCI ID: held.
    if kind < 0.015:
        state = "incomplete"
    elif kind < 0.03:
        state = "complete_fail"
    elif kind < 0.045:
        source = "legacy"
    elif kind < 0.06:
        voided = True
    elif kind < 0.07:
        completed = completed - timedelta(days=400)
    elif kind < 0.08:
        course = "c-unsubscribed"
    record = {
        "record_id": "",
        "site": SITE,
        "user_id": f"u{user}",
        "course": {"id": course, "shortname": course, "idnumber": None},
        "activity": None,
        "completion_state": state,
        "completed_at": completed,
        "source": source,
        "voided": voided,
        "expires_at": None,
        "origin": {"moodle_event": None, "moodle_object_id": None, "xapi_statement_id": None},
        "published_at": now,
    }
    record["record_id"] = record_id_of(record)
    return record


def _user_of(rng: random.Random) -> int:
    return rng.randrange(USERS)


def _profile(user: int) -> dict:
    if user < 40:
        oci = ""
    elif user < 80:
        oci = f"CA-ON-COPO-{user}"  # college not enabled
    else:
        oci = f"CA-ON-CPSO-{10000 + user}"
    return {
        "site": SITE,
        "user_id": f"u{user}",
        "username": f"u{user}",
        "firstname": None,
        "lastname": None,
        "email": None,
        "oci_id": oci,
        "suspended": False,
        "deleted": False,
        "modified_at": datetime.now(UTC),
    }


async def publish_setup(settings: Settings) -> None:
    producer = AIOKafkaProducer(
        **kafka_connection(settings).client_options(), linger_ms=10, acks="all"
    )
    await producer.start()
    try:
        subscription = {
            "site": SITE,
            "course_id": "c1",
            "recipients": ["CMaRS"],
            "required_activities": [],
            "changed_by": "bench",
            "changed_at": datetime.now(UTC),
        }
        await producer.send_and_wait(
            COURSE_RECIPIENTS,
            CODEC.encode("CourseRecipients", subscription),
            key=course_key(SITE, "c1"),
        )
        futures = [
            await producer.send(
                USER_PROFILES,
                CODEC.encode("UserProfile", _profile(u)),
                key=user_key(SITE, f"u{u}"),
            )
            for u in range(USERS)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def publish_records(settings: Settings, count: int, rate: float | None, seed: int) -> float:
    """Publish `count` records, at `rate` per second if given; returns seconds taken."""
    rng = random.Random(seed)
    producer = AIOKafkaProducer(
        **kafka_connection(settings).client_options(), linger_ms=5, acks="all"
    )
    await producer.start()
    started = time.monotonic()
    try:
        futures = []
        for n in range(count):
            if rate:
                # Pace against the schedule, not per message, so drift does not accumulate.
                ahead = started + n / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            record = _record(n, _user_of(rng), datetime.now(UTC), rng)
            futures.append(
                await producer.send(
                    LEARNING_RECORDS,
                    CODEC.encode("LearningRecord", record),
                    key=user_key(SITE, record["user_id"]),
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.monotonic() - started


async def run_passthrough(settings: Settings, count: int) -> None:
    """Consume the records and produce each value unchanged, until `count` are through."""
    consumer = AIOKafkaConsumer(
        LEARNING_RECORDS,
        **kafka_connection(settings).client_options(),
        group_id=f"bench-passthrough-{os.getpid()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
    )
    producer = AIOKafkaProducer(
        **kafka_connection(settings).client_options(), linger_ms=5, acks="all"
    )
    await consumer.start()
    await producer.start()
    done = 0
    try:
        while done < count:
            batches = await consumer.getmany(timeout_ms=1000)
            futures = []
            for messages in batches.values():
                for m in messages:
                    futures.append(
                        await producer.send(PASSTHROUGH, m.value, key=m.key, partition=m.partition)
                    )
            await asyncio.gather(*futures)
            if batches:
                await consumer.commit()
            done += len(futures)
    finally:
        await producer.stop()
        await consumer.stop()


async def run_faust_intake(env: dict[str, str], count: int, timeout: float = 600) -> float:
    """Records/s of bench/faust_intake.py over the published records."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.faust_intake",
        str(count),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert child.stdout is not None
    try:
        async with asyncio.timeout(timeout):
            async for line in child.stdout:
                # Faust's spinner may put terminal escapes before the figure.
                _, found, figure = line.partition(b"faust intake: ")
                if found:
                    return float(figure)
        raise RuntimeError("bench.faust_intake exited without a figure")
    finally:
        if child.returncode is None:
            child.terminate()
            await child.wait()


async def output_times(settings: Settings, topics: list[str]) -> list[tuple[int, bytes | None]]:
    """(Kafka timestamp ms, value) of every non-tombstone message in the topics."""
    return [
        (m.timestamp, m.value)
        for topic in topics
        for m in await read_topic(kafka_connection(settings), topic)
        if m.value is not None
    ]


async def count_messages(settings: Settings, topics: list[str]) -> int:
    consumer = AIOKafkaConsumer(
        **kafka_connection(settings).client_options(), enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p)
            for t in topics
            for p in await partitions_of(kafka_connection(settings), t)
        ]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


def span_rate(times: list[int], count: int) -> float:
    seconds = (max(times) - min(times)) / 1000
    return count / seconds if seconds > 0 else float("inf")


async def wait_for_outputs(settings: Settings, topics: list[str], at_least: int) -> None:
    # Pending tombstones count in end offsets, so this waits for at least as many.
    while await count_messages(settings, topics) < at_least:
        await asyncio.sleep(1)


async def bench(
    settings: Settings, count: int, rate: float, latency_seconds: float, profile: Path | None = None
) -> None:
    await apply_catalogue(settings)
    admin_topics = [PASSTHROUGH]
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(**kafka_connection(settings).client_options())
    await admin.start()
    await admin.create_topics(
        [NewTopic(t, settings.topic_partitions, settings.replication_factor) for t in admin_topics]
    )
    await admin.close()
    await publish_setup(settings)
    seconds = await publish_records(settings, count, None, seed=1)
    print(f"published {count:,} records in {seconds:.1f}s ({count / seconds:,.0f}/s)")

    started = time.monotonic()
    await run_passthrough(settings, count)
    through = [t for t, _ in await output_times(settings, [PASSTHROUGH])]
    passthrough_rate = span_rate(through, len(through))
    print(
        f"passthrough: {len(through):,} records, {passthrough_rate:,.0f} records/s "
        f"(wall {time.monotonic() - started:.1f}s with start-up)"
    )

    env = {k: v for k, v in os.environ.items()}
    env.update(
        LRX_BROKER_PORT=str(settings.broker_port),
        LRX_RUN_DIR=str(settings.run_dir),
        LRX_APP_ID=f"bench-{os.getpid()}",
    )
    if settings.kafka_bootstrap:
        env["LRX_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap

    intake_rate = await run_faust_intake(env, count)
    print(
        f"faust intake (decode, take, ack; no decisions, no outputs): {intake_rate:,.0f} "
        f"records/s ({intake_rate / passthrough_rate:.2f} of passthrough)"
    )

    decided_topics = [outbox_topic("cmars"), INELIGIBLE, PENDING]
    log_path = settings.run_dir / "bench-worker.log"
    with open(log_path, "ab") as log:
        lrx = str(Path(sys.executable).with_name("lrx"))
        command = [lrx, "worker", "--loglevel", "warning"]
        if profile is not None:
            # pyinstrument writes its report when the worker exits (on our SIGTERM).
            pyinstrument = str(Path(sys.executable).with_name("pyinstrument"))
            command = [pyinstrument, "-r", "text", "-o", str(profile), *command]
        worker = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.monotonic()
        await wait_for_outputs(settings, decided_topics, count)
        outputs = await output_times(settings, decided_topics)
        pipeline_rate = span_rate([t for t, _ in outputs], len(outputs))
        print(
            f"pipeline:    {len(outputs):,} decisions, {pipeline_rate:,.0f} records/s "
            f"(wall {time.monotonic() - started:.1f}s with start-up)"
        )
        print(f"ratio pipeline/passthrough: {pipeline_rate / passthrough_rate:.2f}")
        print(f"ratio pipeline/faust intake: {pipeline_rate / intake_rate:.2f}")

        latency_count = int(rate * latency_seconds)
        run_started_ms = time.time() * 1000
        taken = await publish_records(settings, latency_count, rate, seed=2)
        print(f"latency run: {latency_count:,} records at {latency_count / taken:,.0f}/s")
        await wait_for_outputs(settings, decided_topics, count + latency_count)
        latencies = []
        for timestamp, value in await output_times(settings, [outbox_topic("cmars")]):
            routed = CODEC.decode("RoutedRecord", value)
            published = routed["record"]["published_at"].timestamp() * 1000
            if published >= run_started_ms:  # records of the latency run only
                latencies.append(timestamp - published)
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"publish-to-outbox latency at {rate:,.0f}/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    finally:
        worker.terminate()
        worker.wait(30 if profile is None else 300)  # pyinstrument renders on exit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200_000, help="records (default 200,000)")
    parser.add_argument("--rate", type=float, default=2000.0, help="records/s of the latency run")
    parser.add_argument(
        "--latency-seconds", type=float, default=10.0, help="length of the latency run"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="run the worker under pyinstrument and write its text report here",
    )
    parser.add_argument(
        "--use-configured-broker",
        action="store_true",
        help="run on the broker of the LRX_ settings instead of a throwaway one "
        "(it writes the pipeline's topics there)",
    )
    args = parser.parse_args()
    settings = Settings.from_env()
    if args.use_configured_broker:
        asyncio.run(bench(settings, args.count, args.rate, args.latency_seconds, args.profile))
        return
    with tempfile.TemporaryDirectory(prefix="lrx-bench-") as run_dir:
        settings = settings.replace(
            kafka_bootstrap="", broker_port=free_port_pair(), run_dir=Path(run_dir)
        )
        broker = EmbeddedBroker(settings)
        broker.start()
        try:
            asyncio.run(bench(settings, args.count, args.rate, args.latency_seconds, args.profile))
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
