"""`lrx sink cmars` against a real broker and the emulator over real HTTP.

One throwaway broker serves the module; each test has a recipient of its own,
hence its own outbox, DLQ and consumer group, and reads the shared receipts
topic by its recipient's keys, so every assertion is about exact topic contents.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from connectors.cmars.schedule import Schedule
from connectors.cmars.sink import CmarsSink
from connectors.doubles.cmars_emulator import CmarsState, EmulatorConfig, Faults
from deploy.broker import EmbeddedBroker, free_port_pair
from deploy.settings import REPO_ROOT, Settings
from deploy.topic_provisioning import apply_catalogue, settings_catalogue
from deploy.wiring import kafka_connection, sink_config
from schemas.codec import Codec, CodecError
from schemas.examples import routed_record
from schemas.topics import DELIVERY_RECEIPTS, dlq_topic, outbox_topic, user_key
from tests.support.cmars import TOKEN, emulator_config, running_emulator
from tests.support.codec import with_timestamp_millis
from tests.support.kafka import unique
from tests.support.polling import eventually

pytestmark = pytest.mark.kafka

CODEC = Codec.default()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A throwaway broker with empty data for this module's tests."""
    settings = Settings.from_env().replace(
        kafka_bootstrap="",
        broker_port=free_port_pair(),
        run_dir=tmp_path_factory.mktemp("sink-broker"),
    )
    embedded = EmbeddedBroker(settings)
    embedded.start()
    yield settings
    embedded.stop()


@dataclass
class Bench:
    """One test's world: its recipient, topics, emulator and sink settings."""

    settings: Settings
    recipient: str
    url: str
    emulator: CmarsState

    @property
    def outbox(self) -> str:
        return outbox_topic(self.recipient)

    async def produce(self, routed: list[dict[str, Any]]) -> None:
        await self.produce_bytes([(outbox_key(r), CODEC.encode("RoutedRecord", r)) for r in routed])

    async def produce_bytes(self, messages: list[tuple[bytes, bytes]]) -> None:
        producer = AIOKafkaProducer(acks="all", **kafka_connection(self.settings).client_options())
        await producer.start()
        try:
            sends = [await producer.send(self.outbox, value, key=key) for key, value in messages]
            await asyncio.gather(*sends)
        finally:
            await producer.stop()

    async def outbox_partitions(self) -> dict[str, int]:
        """record id -> the outbox partition it is in, for every readable outbox record."""
        partitions = {}
        for message in await read_topic(self.settings, self.outbox):
            with contextlib.suppress(CodecError):
                partitions[CODEC.decode("RoutedRecord", message.value)["record_id"]] = (
                    message.partition
                )
        return partitions

    def records(self, n: int, start: int = 0, **kwargs: Any) -> list[dict[str, Any]]:
        return [routed_record(i, recipient=self.recipient, **kwargs) for i in range(start, n)]

    def accepted(self) -> set[str]:
        return set(self.emulator.records)

    async def receipts(self) -> list[tuple[bytes, dict[str, Any]]]:
        prefix = f"{self.recipient}/".encode()
        return [
            (m.key, CODEC.decode("DeliveryReceipt", m.value))
            for m in await read_topic(self.settings, DELIVERY_RECEIPTS)
            if m.key.startswith(prefix)
        ]

    async def dead_letters(self) -> list[Any]:
        return await read_topic(self.settings, dlq_topic(self.recipient))

    async def committed(self) -> dict[int, int | None]:
        consumer = AIOKafkaConsumer(
            group_id=sink_config(self.settings).group_of(self.recipient),
            enable_auto_commit=False,
            **kafka_connection(self.settings).client_options(),
        )
        await consumer.start()
        try:
            tps = [TopicPartition(self.outbox, p) for p in range(self.settings.topic_partitions)]
            return {tp.partition: await consumer.committed(tp) for tp in tps}
        finally:
            await consumer.stop()

    async def end_offsets(self) -> dict[int, int]:
        consumer = AIOKafkaConsumer(**kafka_connection(self.settings).client_options())
        await consumer.start()
        try:
            tps = [TopicPartition(self.outbox, p) for p in range(self.settings.topic_partitions)]
            return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
        finally:
            await consumer.stop()


def outbox_key(routed: dict[str, Any]) -> bytes:
    return user_key(routed["record"]["site"], routed["record"]["user_id"])


async def read_topic(settings: Settings, topic: str) -> list[Any]:
    """Every message of a topic, read from the start up to the end offsets of now."""
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_connection(settings).client_options(),
    )
    await consumer.start()
    try:
        count = next(t.partitions for t in settings_catalogue(settings) if t.name == topic)
        tps = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        messages = []
        deadline = time.monotonic() + 30
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, f"reading {topic} took over 30s"
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                messages += batch
        return messages
    finally:
        await consumer.stop()


@asynccontextmanager
async def bench_for(
    broker: Settings, config: EmulatorConfig | None = None, **sink_settings: Any
) -> AsyncIterator[Bench]:
    recipient = unique("cmars")
    config = config or emulator_config(seed=5)
    async with running_emulator(config) as (url, state):
        quick = {
            "sink_linger": 0.2,
            "sink_retry_initial": 0.1,
            "sink_retry_cap": 1.0,
            "sink_auth_retry_interval": 0.5,
            "sink_session_timeout": 6.0,
            "sink_shutdown_grace": 5.0,
        }
        settings = broker.replace(
            recipients=(recipient,),
            cmars_url=url,
            cmars_token=TOKEN,
            **(quick | sink_settings),
        )
        await apply_catalogue(settings)
        yield Bench(settings, recipient, url, state)


@asynccontextmanager
async def running_sink(bench: Bench, **kwargs: Any) -> AsyncIterator[CmarsSink]:
    stop = asyncio.Event()
    sink = CmarsSink(sink_config(bench.settings), bench.recipient, **kwargs)
    await sink.start()
    task = asyncio.create_task(sink.run(stop))
    try:
        yield sink
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 30)
        finally:
            await sink.stop()


async def assert_exactly_once(bench: Bench, expected: list[dict[str, Any]]) -> None:
    """Each expected record accepted once, one receipt each, nothing dead, all committed."""
    ids = {r["record_id"] for r in expected}
    assert bench.accepted() == ids
    inventory = bench.emulator.inventory()
    assert inventory["acceptances"] == len(ids)
    receipts = await bench.receipts()
    # Counted, not compared as sets: a second receipt for a record means it was settled twice.
    counts = Counter(value["record_id"] for _, value in receipts)
    assert counts == Counter(ids), {i: n for i, n in counts.items() if n != 1}
    assert all(value["outcome"] in ("accepted", "duplicate") for _, value in receipts)
    assert await bench.dead_letters() == []
    await eventually(_committed_to_end(bench), 10, "offsets committed up to the end of the outbox")


def _committed_to_end(bench: Bench):
    async def check() -> bool:
        ends = await bench.end_offsets()
        committed = await bench.committed()
        return all((committed[p] or 0) == end for p, end in ends.items())

    return check


# --- the tests


async def test_steady_run_delivers_5000_records_exactly_once(broker: Settings) -> None:
    async with bench_for(broker, sink_batch_records=500) as bench:
        routed = bench.records(5000)
        await bench.produce(routed)
        async with running_sink(bench) as sink:
            await eventually(lambda: len(bench.accepted()) == 5000, 60, "5000 accepted")
            await eventually(_committed_to_end(bench), 10, "all offsets committed")
            assert (
                sink.metrics.metrics.sample(
                    "lrx_sink_records_delivered_total",
                    {"recipient": bench.recipient, "outcome": "accepted"},
                )
                == 5000
            )
        await assert_exactly_once(bench, routed)
        receipt_key, receipt = (await bench.receipts())[0]
        assert receipt_key == f"{bench.recipient}/{receipt['record_id']}".encode()
        assert receipt["oci_id"].startswith("CA-ON-CPSO-")
        assert bench.emulator.inventory()["duplicates_seen"] == 0
        await assert_receipts_in_outbox_partitions(bench)


async def assert_receipts_in_outbox_partitions(bench: Bench) -> None:
    """Each receipt is in the partition of the outbox record it settles, not where
    murmur2(key) would put it (schemas/topics.py, lrx.delivery-receipts)."""
    outbox = await bench.outbox_partitions()
    prefix = f"{bench.recipient}/".encode()
    receipts = [
        m for m in await read_topic(bench.settings, DELIVERY_RECEIPTS) if m.key.startswith(prefix)
    ]
    assert receipts
    assert len({m.partition for m in receipts}) > 1
    for message in receipts:
        record_id = CODEC.decode("DeliveryReceipt", message.value)["record_id"]
        assert message.partition == outbox[record_id], record_id


async def test_a_poison_record_is_dead_lettered_and_the_rest_of_its_batch_delivered(
    broker: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with bench_for(broker, sink_batch_records=100, sink_linger=0.5) as bench:
        routed = bench.records(30)
        # Bytes another Avro writer may produce: a completion time past year 9999.
        overflowing = routed[10]
        stamp = overflowing["record"]["completed_at"]
        overflow_bytes = with_timestamp_millis(
            CODEC.encode("RoutedRecord", overflowing), stamp, 10**15
        )
        # A record our own request code fails on (a bug): orjson meets a lone surrogate.
        breaking = routed[20]["record_id"]

        def record_json(request: dict[str, Any]) -> bytes:
            if request["record_id"] == breaking:
                request = {**request, "site": "lone \ud800 surrogate"}
            return orjson.dumps(request)

        monkeypatch.setattr("connectors.cmars.entries.record_json", record_json)
        await bench.produce_bytes(
            [
                (
                    outbox_key(r),
                    overflow_bytes if r is overflowing else CODEC.encode("RoutedRecord", r),
                )
                for r in routed
            ]
        )
        async with running_sink(bench):
            await eventually(lambda: _count(bench.dead_letters(), 2), 30, "2 dead letters")
            await eventually(lambda: len(bench.accepted()) == 28, 30, "the other 28 accepted")
            await eventually(_committed_to_end(bench), 10, "all offsets committed")
        letters = {
            CODEC.decode("DeadLetter", m.value)["reason_code"]: CODEC.decode("DeadLetter", m.value)
            for m in await bench.dead_letters()
        }
        assert set(letters) == {"undecodable", "unprocessable"}
        assert letters["undecodable"]["original_value"] == overflow_bytes
        assert "out of range" in letters["undecodable"]["error_message"]
        assert letters["unprocessable"]["record_id"] == breaking
        assert "surrogates not allowed" in letters["unprocessable"]["error_message"]
        expected = {r["record_id"] for r in routed} - {overflowing["record_id"], breaking}
        assert bench.accepted() == expected
        assert {v["record_id"] for _, v in await bench.receipts()} == expected


async def test_faults_5xx_latency_and_outage_still_deliver_exactly_once(broker: Settings) -> None:
    faults = Faults(error_rate=0.3, latency=0.2)
    config = emulator_config(faults=faults, seed=11)
    async with bench_for(broker, config, sink_batch_records=100) as bench:
        routed = bench.records(1500)
        await bench.produce(routed)
        async with running_sink(bench):
            await eventually(lambda: len(bench.accepted()) >= 200, 30, "first batches")
            outage_start = bench.emulator.uptime()
            bench.emulator.faults.change({"outage_for": 20}, outage_start)
            await eventually(lambda: len(bench.accepted()) == 1500, 90, "all 1500 accepted")
        log = list(bench.emulator.requests)
        assert {500, 502} & {r["status"] for r in log}
        # Answers logged a second after the outage began were all refused until it ended.
        during = [r for r in log if outage_start + 1 < r["at"] < outage_start + 20]
        assert len(during) >= 3 and {r["status"] for r in during} == {503}
        await assert_exactly_once(bench, routed)


async def test_retry_after_is_waited_as_told(broker: Settings) -> None:
    config = emulator_config(faults=Faults(rate_limit=2, retry_after=2))
    async with bench_for(broker, config, sink_batch_records=10, sink_linger=0.05) as bench:
        routed = bench.records(80)
        await bench.produce(routed)
        async with running_sink(bench):
            await eventually(lambda: len(bench.accepted()) == 80, 60, "all 80 accepted")
        log = list(bench.emulator.requests)
        throttled = [i for i, r in enumerate(log) if r["status"] == 429]
        assert throttled, "the emulator never throttled the sink"
        for i in throttled:
            retry = next(r for r in log[i + 1 :] if r["batch_id"] == log[i]["batch_id"])
            assert retry["at"] - log[i]["at"] >= 2.0, (log[i], retry)
        await assert_exactly_once(bench, routed)


async def test_ws400_and_ws401_are_dead_lettered_with_headers(broker: Settings) -> None:
    good = [routed_record(n) for n in range(20)]
    roster = frozenset(r["oci_id"]["canonical"] for r in good)
    config = emulator_config(roster=roster)
    async with bench_for(broker, config) as bench:
        good = bench.records(20)
        unsupported = bench.records(23, start=20, college="CA-ON-COPO")
        unknown = bench.records(25, start=23, licence="99999")
        await bench.produce(good + unsupported + unknown)
        async with running_sink(bench):
            await eventually(lambda: len(bench.accepted()) == 20, 30, "20 accepted")
            await eventually(lambda: _count(bench.dead_letters(), 5), 30, "5 dead letters written")
        letters = await bench.dead_letters()
        by_id = {}
        for message in letters:
            value = CODEC.decode("DeadLetter", message.value)
            headers = {k: v.decode() for k, v in message.headers}
            by_id[value["record_id"]] = (message, value, headers)
            assert message.key == value["record_id"].encode()
            assert value["attempts"] >= 1 and value["stage"] == "sink.cmars"
            assert value["first_attempt_at"] <= value["last_attempt_at"]
            assert headers["lrx.errors.topic"] == value["source_topic"] == bench.outbox
            assert int(headers["lrx.errors.partition"]) == value["source_partition"]
            assert int(headers["lrx.errors.offset"]) == value["source_offset"]
            assert headers["lrx.errors.reason.code"] == value["reason_code"]
            assert headers["lrx.errors.exception.message"] == value["error_message"]
            assert headers["lrx.errors.connector.name"] == f"lrx sink {bench.recipient}"
            assert headers["lrx.errors.exception.class.name"] == "RecordRejected"
            assert (
                CODEC.decode("RoutedRecord", value["original_value"])["record_id"]
                == (value["record_id"])
            )
        codes = {rid: v["reason_code"] for rid, (_, v, _) in by_id.items()}
        assert codes == {r["record_id"]: "WS400" for r in unsupported} | {
            r["record_id"]: "WS401" for r in unknown
        }
        assert "CA-ON-COPO" in by_id[unsupported[0]["record_id"]][1]["error_message"]
        delivered = {v["record_id"] for _, v in await bench.receipts()}
        assert delivered == {r["record_id"] for r in good}
        await eventually(_committed_to_end(bench), 10, "all offsets committed")


async def _count(messages: Any, n: int) -> bool:
    return len(await messages) >= n


async def test_a_400_on_a_batch_of_100_isolates_the_3_bad_records(broker: Settings) -> None:
    async with bench_for(broker, sink_batch_records=100, sink_linger=2.0) as bench:
        routed = bench.records(100)
        bad_positions = (7, 50, 93)
        for i in bad_positions:
            routed[i] = routed_record(i, recipient=bench.recipient, licence="12 34")
        await bench.produce(routed)
        async with running_sink(bench) as sink:
            await eventually(lambda: len(bench.accepted()) == 97, 30, "97 accepted")
            await eventually(lambda: _count(bench.dead_letters(), 3), 30, "3 dead letters")
            await eventually(_committed_to_end(bench), 10, "all offsets committed")
        first = bench.emulator.requests[0]
        assert (first["records"], first["status"]) == (100, 400)
        letters = [CODEC.decode("DeadLetter", m.value) for m in await bench.dead_letters()]
        assert {v["record_id"] for v in letters} == {routed[i]["record_id"] for i in bad_positions}
        assert {v["reason_code"] for v in letters} == {"malformed"}
        assert all("licence" in v["error_message"] for v in letters)
        # Halving needs at most two requests per level per bad record: 1 + 2 * 3 * 7.
        assert sink.delivery.requests <= 43
        good = {r["record_id"] for i, r in enumerate(routed) if i not in bad_positions}
        assert bench.accepted() == good


async def test_auth_failure_pauses_without_dead_letters_then_resumes(broker: Settings) -> None:
    config = emulator_config(faults=Faults(auth_failure=True))
    async with bench_for(broker, config) as bench:
        routed = bench.records(50)
        await bench.produce(routed)
        async with running_sink(bench) as sink:
            paused = {"recipient": bench.recipient}
            await eventually(
                lambda: sink.metrics.metrics.sample("lrx_sink_paused", paused) == 1,
                30,
                "the sink reports itself paused",
            )
            await eventually(
                lambda: [r["status"] for r in bench.emulator.requests].count(401) >= 3,
                30,
                "the sink keeps retrying slowly",
            )
            assert bench.accepted() == set()
            assert await bench.dead_letters() == []
            assert all(p is None for p in (await bench.committed()).values())
            bench.emulator.faults.change({"auth_failure": False}, 0)
            await eventually(lambda: len(bench.accepted()) == 50, 30, "all 50 accepted")
            await eventually(
                lambda: sink.metrics.metrics.sample("lrx_sink_paused", paused) == 0,
                10,
                "the sink no longer reports itself paused",
            )
        await assert_exactly_once(bench, routed)


async def test_sigkill_mid_batch_loses_nothing_and_accepts_nothing_twice(
    broker: Settings,
) -> None:
    config = emulator_config(faults=Faults(latency=1.0))
    async with bench_for(broker, config, sink_batch_records=200) as bench:
        routed = bench.records(1600)
        await bench.produce(routed)

        def answered() -> int:
            return sum(r["records"] for r in bench.emulator.requests if r["status"] == 200)

        sink = start_sink_process(bench)
        try:
            # Mid-batch: CMaRS has processed a batch whose answer has not left yet.
            await eventually(
                lambda: answered() >= 200 and len(bench.accepted()) > answered(),
                60,
                "a processed batch whose answer is still on its way",
            )
            sink.send_signal(signal.SIGKILL)
            sink.wait(10)
            at_kill = len(bench.accepted())
            assert 0 < at_kill < 1600
            sink = start_sink_process(bench)
            await eventually(lambda: len(bench.accepted()) == 1600, 90, "all 1600 accepted")
            await eventually(_committed_to_end(bench), 15, "all offsets committed")
        finally:
            sink.send_signal(signal.SIGTERM)
            code = sink.wait(30)
        assert code == 0, "the sink did not exit cleanly on SIGTERM"
        inventory = bench.emulator.inventory()
        assert inventory["accepted"] == inventory["acceptances"] == 1600
        # The killed batch was sent again after the restart, and recognised.
        assert inventory["replays"] + inventory["duplicates_seen"] >= 1
        await assert_exactly_once(bench, routed)


def sink_process_env(bench: Bench) -> dict[str, str]:
    """The environment of an `lrx sink` process for this bench."""
    settings = bench.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRX_")}
    env.update(
        LRX_BROKER_PORT=str(settings.broker_port),
        LRX_RUN_DIR=str(settings.run_dir),
        LRX_CMARS_URL=settings.cmars_url,
        LRX_CMARS_TOKEN=settings.cmars_token,
        LRX_SINK_BATCH_RECORDS=str(settings.sink_batch_records),
        LRX_SINK_LINGER="0.2",
        LRX_SINK_RETRY_INITIAL="0.1",
        LRX_SINK_RETRY_CAP="1",
        LRX_SINK_SESSION_TIMEOUT="6",
        LRX_SINK_SHUTDOWN_GRACE="5",
    )
    return env


def start_sink_process(bench: Bench) -> subprocess.Popen:
    lrx = Path(sys.executable).with_name("lrx")
    return subprocess.Popen(
        [str(lrx), "sink", "cmars", "--recipient", bench.recipient],
        env=sink_process_env(bench),
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_a_rebalance_cancels_the_unsettled_batch_in_flight_and_commits_nothing_of_it(
    broker: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    config = emulator_config(faults=Faults(latency=5.0))
    async with bench_for(
        broker, config, sink_batch_records=40, sink_linger=0.2, sink_shutdown_grace=0.5
    ) as bench:
        routed = bench.records(40)
        await bench.produce(routed)
        async with running_sink(bench) as first:
            # CMaRS has processed the batch; its answer is 5 s away.
            await eventually(
                lambda: len(bench.accepted()) == 40 and first._inflight is not None,
                30,
                "the first sink's batch processed by CMaRS, its answer not yet back",
            )
            async with running_sink(bench):
                await eventually(lambda: _count(bench.receipts(), 40), 60, "40 receipts")
                await eventually(_committed_to_end(bench), 15, "all offsets committed")
        assert "did not settle within 0.5s; cancelled it" in caplog.text
        receipts = [value for _, value in await bench.receipts()]
        # One receipt per record: the cancelled batch wrote none. The records went again
        # from the partitions' new owners, and CMaRS knew them.
        assert sorted(v["record_id"] for v in receipts) == sorted(r["record_id"] for r in routed)
        assert {v["outcome"] for v in receipts} == {"duplicate"}
        assert bench.emulator.inventory()["acceptances"] == 40


class ManualClock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


async def test_daily_window_drains_exactly_to_the_end_offsets_read_at_opening(
    broker: Settings,
) -> None:
    config = emulator_config(faults=Faults(latency=0.3))
    async with bench_for(broker, config, sink_batch_records=20) as bench:
        before = bench.records(100)
        later = bench.records(150, start=100)
        await bench.produce(before)
        clock = ManualClock(datetime(2026, 1, 10, 17, 0, tzinfo=UTC))  # noon in Toronto
        schedule = Schedule.parse("0 2 * * *", "America/Toronto")
        async with running_sink(bench, schedule=schedule, clock=clock) as sink:
            # Between windows the sink holds its partitions paused at the start: nothing
            # is fetched, so nothing can go out.
            await eventually(
                lambda: _waits_at_start(sink), 30, "the sink waits for its window, paused at 0"
            )
            assert list(bench.emulator.requests) == []

            clock.current = datetime(2026, 1, 11, 7, 0, tzinfo=UTC)  # 02:00 EST
            await eventually(lambda: sink.window.ends, 10, "the first window opened")
            ends = dict(sink.window.ends)
            await bench.produce(later)  # arrives while the window drains
            await eventually(lambda: sink.window.drained == 1, 60, "the first window drained")
            assert sum(ends.values()) == 100
            assert bench.accepted() == {r["record_id"] for r in before}

            clock.current += timedelta(days=1)
            await eventually(lambda: sink.window.drained == 2, 60, "the second window drained")
            assert sum(sink.window.ends.values()) == 150
        await assert_exactly_once(bench, before + later)


async def _waits_at_start(sink: CmarsSink) -> bool:
    if not sink.waiting_for_window:
        return False
    return all([await sink.consumer.position(tp) == 0 for tp in sink.consumer.assignment()])


async def test_dry_run_prints_each_partitions_backlog_and_sends_nothing(broker: Settings) -> None:
    async with bench_for(broker) as bench:
        await bench.produce(bench.records(30))
        env = sink_process_env(bench)
        lrx = str(Path(sys.executable).with_name("lrx"))
        command = [lrx, "sink", "cmars", "--recipient", bench.recipient, "--dry-run"]
        result = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        ends = await bench.end_offsets()
        assert lines[:-1] == [
            f"{bench.outbox}[{p}]: committed None, end {end}, waiting {end}"
            for p, end in sorted(ends.items())
        ]
        assert lines[-1].startswith("30 waiting; would send to http://127.0.0.1:")
        assert bench.accepted() == set() and set((await bench.committed()).values()) == {None}

        missing = [lrx, "sink", "cmars", "--recipient", "nosuch", "--dry-run"]
        result = await asyncio.to_thread(
            subprocess.run, missing, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 1
        assert result.stderr.strip().endswith(
            "Error: topic lrx.outbox.nosuch does not exist on "
            f"{broker.bootstrap_servers}; create the topics with `lrx topics create`"
        ), result.stderr
