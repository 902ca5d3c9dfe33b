"""Benchmark of `lrx users import`: rows per second to check a file and to publish it.

    .venv/bin/python -m bench.user_import [--rows 100000]

Starts a throwaway embedded broker (in a temporary folder, on free ports) unless
--bootstrap names a cluster, seeds ROWS user profiles as the LMS would, then
times each phase of an import of a CSV giving every user an OCI ID, and finally
the whole `lrx users import` command as an operator runs it. Prints figures; it
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from connectors.lms.profile_directory import read_profile_directory
from connectors.lms.user_import import UserImport, read_upload_file
from deploy.broker import EmbeddedBroker, free_port_pair
from deploy.cli.users import PUBLISH_CHUNK
from deploy.settings import REPO_ROOT, Settings
from deploy.topic_provisioning import apply_catalogue
from deploy.wiring import admin_publisher, kafka_connection
from schemas.codec import Codec
from streams.rules.colleges import CollegeRegistry


def upload_csv(rows: int) -> bytes:
    lines = ["username,email,firstname,lastname,idnumber,profile_field_ociid"]
    lines += [f"user{n:06d},u{n}@bench.example,First,Last,ID{n},CA-ON-CPSO-{n:06d}" for n in
              range(1, rows + 1)]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n").encode()


def profiles(site: str, rows: int) -> list[dict]:
    modified = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {"site": site, "user_id": str(n), "username": f"user{n:06d}", "firstname": "First",
         "lastname": "Last", "email": f"u{n}@bench.example", "oci_id": None,
         "suspended": False, "deleted": False, "modified_at": modified}
        for n in range(1, rows + 1)
    ]  # fmt: skip


async def publish(settings: Settings, codec: Codec, values: list[dict]) -> None:
    async with admin_publisher(settings, codec) as publisher:
        for start in range(0, len(values), PUBLISH_CHUNK):
            await publisher.publish_profiles(values[start : start + PUBLISH_CHUNK])


def report(label: str, rows: int, seconds: float) -> None:
    print(f"{label:<44} {seconds:7.2f} s  {rows / seconds:10,.0f} rows/s")


async def run_phases(settings: Settings, rows: int, site: str, upload: Path) -> None:
    codec = Codec.default()
    colleges = CollegeRegistry.load(settings.colleges_file)

    started = time.perf_counter()
    await publish(settings, codec, profiles(site, rows))
    report("seed profiles (the LMS publishing users)", rows, time.perf_counter() - started)

    started = time.perf_counter()
    directory = await read_profile_directory(
        kafka_connection(settings), settings.admin_kafka_timeout, codec, colleges, site
    )
    report("read lms.user-profiles whole", directory.count, time.perf_counter() - started)

    started = time.perf_counter()
    table = read_upload_file(upload.read_bytes())
    user_import = UserImport(site, table.columns, directory, colleges, datetime.now(UTC))
    for row in table.rows:
        user_import.check(row)
    plan = user_import.plan()
    report("parse + validate the CSV", plan.rows, time.perf_counter() - started)
    assert not plan.problems, plan.problems[:3]  # a broken benchmark input, not a timing

    started = time.perf_counter()
    await publish(settings, codec, plan.profiles)
    report("publish updated profiles (acks=all)", len(plan.profiles), time.perf_counter() - started)


def time_command(settings: Settings, rows: int, site: str, upload: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRX_")}
    env["LRX_KAFKA_BOOTSTRAP"] = settings.bootstrap_servers
    started = time.perf_counter()
    done = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "lrx"), "users", "import", str(upload), "--site", site],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    report(f"`lrx users import` end to end (exit {done.returncode})", rows, seconds)
    print(f"    {done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr}")


@contextmanager
def scratch_broker() -> Iterator[Settings]:
    with tempfile.TemporaryDirectory(prefix="lrx-bench-") as run_dir:
        settings = Settings.from_env({}).replace(
            broker_port=free_port_pair(), run_dir=Path(run_dir)
        )
        broker = EmbeddedBroker(settings)
        broker.start()
        try:
            yield settings
        finally:
            broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bootstrap", help="An existing cluster (its topics must exist).")
    args = parser.parse_args()
    site = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="lrx-bench-csv-") as folder:
        upload = Path(folder) / "users.csv"
        upload.write_bytes(upload_csv(args.rows))
        print(f"{args.rows:,} rows, {upload.stat().st_size / 1e6:.1f} MB CSV, site {site}")
        if args.bootstrap:
            settings = Settings.from_env({}).replace(kafka_bootstrap=args.bootstrap)
            asyncio.run(run_phases(settings, args.rows, site, upload))
            time_command(settings, args.rows, site, upload)
            return
        with scratch_broker() as settings:
            asyncio.run(apply_catalogue(settings))
            asyncio.run(run_phases(settings, args.rows, site, upload))
            time_command(settings, args.rows, site, upload)


if __name__ == "__main__":
    sys.exit(main())
