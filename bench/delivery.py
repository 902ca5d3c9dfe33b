"""Delivery throughput: the sink (Kafka -> CMaRS emulator) against posting batches directly.

    .venv/bin/python bench/delivery.py [--records 100000] [--batch 500]

Starts a throwaway broker and `lrx emulator cmars` (no faults) in processes of
their own, then:
  1. direct: posts batches of --batch contract records to the emulator with aiohttp,
     one request at a time, no Kafka;
  2. sink:   produces the same number of RoutedRecords to an outbox, then runs the
     sink until every record has a receipt.
Prints records/s for both and their ratio (target: sink >= 0.8 x direct). The two
phases use different record ids, since the emulator answers a known id `duplicate`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.cmars.contract import (  # noqa: E402
    BATCHES_PATH,
    batch_body,
    batch_id_of,
    record_json,
    request_record,
)
from connectors.cmars.sink import CmarsSink
from deploy.broker import EmbeddedBroker, free_port_pair  # noqa: E402
from deploy.settings import REPO_ROOT, Settings  # noqa: E402
from deploy.topic_provisioning import apply_catalogue  # noqa: E402
from deploy.wiring import kafka_connection, sink_config  # noqa: E402
from schemas.codec import Codec  # noqa: E402
from schemas.examples import routed_record  # noqa: E402
from schemas.topics import outbox_topic, user_key  # noqa: E402

TOKEN = "bench-token"
RECIPIENT = "cmars"


async def direct(url: str, records: int, batch: int) -> float:
    """Seconds to post `records` records in batches straight to the emulator."""
    routed = [routed_record(n, site="direct") for n in range(records)]
    requests = []
    for start in range(0, records, batch):
        chunk = routed[start : start + batch]
        fragments = [record_json(request_record(r)) for r in chunk]
        requests.append((batch_id_of(r["record_id"] for r in chunk), fragments))
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as http:
        began = time.perf_counter()
        for batch_id, fragments in requests:
            body = batch_body(batch_id, fragments, datetime.now(UTC))
            async with http.post(
                url + BATCHES_PATH, data=body, headers={"Idempotency-Key": batch_id}
            ) as answer:
                assert answer.status == 200, await answer.text()
                await answer.read()
        return time.perf_counter() - began


async def through_sink(settings: Settings, records: int) -> tuple[float, float, int]:
    """(seconds from start, seconds from first receipt, records then) for the sink's run."""
    await fill_outbox(settings, records)
    return await run_sink(settings, records)


async def fill_outbox(settings: Settings, records: int) -> None:
    codec = Codec.default()
    producer = AIOKafkaProducer(
        acks="all", linger_ms=20, **kafka_connection(settings).client_options()
    )
    await producer.start()
    try:
        pending = []
        for n in range(records):
            r = routed_record(n, site="sink")
            key = user_key(r["record"]["site"], r["record"]["user_id"])
            pending.append(
                await producer.send(
                    outbox_topic(RECIPIENT), codec.encode("RoutedRecord", r), key=key
                )
            )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    print(f"  produced {records} RoutedRecords to {outbox_topic(RECIPIENT)}")


async def run_sink(settings: Settings, records: int) -> tuple[float, float, int]:

    sink = CmarsSink(sink_config(settings), RECIPIENT)
    labels = {"recipient": RECIPIENT, "outcome": "accepted"}

    def delivered() -> int:
        return int(sink.metrics.metrics.sample("lrx_sink_records_delivered_total", labels) or 0)

    stop = asyncio.Event()
    began = time.perf_counter()
    await sink.start()
    task = asyncio.create_task(sink.run(stop))
    first_at, first_count = None, 0
    while delivered() < records:
        await asyncio.sleep(0.01)
        if first_at is None and delivered() > 0:
            first_at, first_count = time.perf_counter(), delivered()
        if task.done():
            task.result()
            raise RuntimeError("the sink stopped before delivering everything")
    ended = time.perf_counter()
    stop.set()
    await task
    await sink.stop()
    return ended - began, ended - (first_at or began), records - first_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    run_dir = Path(tempfile.mkdtemp(prefix="lrx-bench-delivery-"))
    emulator_port = free_port_pair()
    settings = Settings.from_env().replace(
        kafka_bootstrap="",
        broker_port=free_port_pair(),
        run_dir=run_dir,
        recipients=(RECIPIENT,),
        cmars_url=f"http://127.0.0.1:{emulator_port}",
        cmars_token=TOKEN,
        sink_batch_records=args.batch,
        sink_linger=0.05,
    )
    broker = EmbeddedBroker(settings)
    print(f"starting a throwaway broker on {broker.address} ...")
    broker.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRX_")}
    env.update(LRX_EMULATOR_TOKEN=TOKEN, LRX_EMULATOR_REFRESH="")
    emulator = subprocess.Popen(
        [str(Path(sys.executable).with_name("lrx")), "emulator", "cmars",
         "--port", str(emulator_port)],
        env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        asyncio.run(_wait_for(settings.cmars_url))
        asyncio.run(apply_catalogue(settings))
        print(f"direct: {args.records} records in batches of {args.batch} ...")
        direct_seconds = asyncio.run(direct(settings.cmars_url, args.records, args.batch))
        print(f"sink: {args.records} records in batches of {args.batch} ...")
        total, steady, steady_records = asyncio.run(through_sink(settings, args.records))
    finally:
        emulator.terminate()
        emulator.wait(10)
        broker.stop()
    direct_rate = args.records / direct_seconds
    sink_rate = args.records / total
    steady_rate = steady_records / steady
    print()
    print(f"direct aiohttp posts : {direct_rate:10,.0f} records/s ({direct_seconds:.2f}s)")
    print(f"sink, from start     : {sink_rate:10,.0f} records/s ({total:.2f}s, incl. group join)")
    print(f"sink, after 1st batch: {steady_rate:10,.0f} records/s ({steady:.2f}s)")
    print(f"ratio sink/direct    : {sink_rate / direct_rate:10.2f} from start, "
          f"{steady_rate / direct_rate:.2f} after the first batch (target >= 0.8)")  # fmt: skip


async def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url + "/lrx/v1/openapi.yaml") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the emulator at {url} did not come up")
            await asyncio.sleep(0.1)


if __name__ == "__main__":
    main()
