"""Benchmark helper: Faust's own intake ceiling, the bound under the stream pipeline.

    LRX_... .venv/bin/python -m bench.faust_intake COUNT

A Faust agent on lms.learning-records, set up like the pipeline's (same app
settings, the lrx-avro codec, `noack_take` batches, acks), that decides
nothing and writes nothing. It prints `faust intake: <records/s>` once COUNT
records are through, timed from the first batch to the last, and then waits
to be stopped. bench/pipeline.py runs it between the passthrough and the
pipeline; it asserts nothing.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import faust

from deploy.settings import Settings
from deploy.wiring import faust_options
from schemas.codec import Codec
from schemas.topics import LEARNING_RECORDS
from streams.worker.faust_codec import CODEC_NAME, register_codec
from streams.worker.faust_transport import FaustApp


def intake_app(settings: Settings, count: int) -> faust.App:
    register_codec(Codec.default())
    (settings.run_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = FaustApp(settings.app_id, **faust_options(settings))
    topic = app.topic(
        LEARNING_RECORDS, key_type=bytes, key_serializer="raw", value_serializer=CODEC_NAME
    )

    @app.agent(topic, concurrency=1)
    async def take_and_ack(stream: Any) -> None:
        seen, first = 0, 0.0
        batches = stream.noack_take(settings.pipeline_batch_size, settings.pipeline_batch_wait)
        async for events in batches:
            first = first or time.monotonic()
            for event in events:
                await stream.ack(event)
            seen += len(events)
            if seen >= count:
                rate = seen / max(time.monotonic() - first, 1e-9)
                print(f"faust intake: {rate:.0f}", flush=True)

    return app


def main() -> None:
    count = int(sys.argv[1])
    settings = Settings.from_env().replace(app_id=f"bench-intake-{os.getpid()}")
    app = intake_app(settings, count)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, override_logging=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
