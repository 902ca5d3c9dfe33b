"""Moodle events into Kafka through the gateway, beside `lrx publish` of the same events,
and statements as Moodle's logstore_xapi posts them (a tenth of them completions).

    .venv/bin/python -m bench.ingest [--count 100000] [--connections 32] [--batch 100] [--profile]

Uses the broker at LRX_KAFKA_BOOTSTRAP, or the embedded one if it answers, or
else starts a throwaway broker (temporary folder, free ports). Starts `lrx
gateway` on a free port with a token made for the run, posts COUNT events in
batches over CONNECTIONS connections, then loads the same events from a JSON
Lines file with `lrx publish`. Stops what it started. Prints accepted events/s
and request latencies; asserts nothing about timings. --profile runs the gateway
under pyinstrument and prints where its time went.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from connectors.lms.moodle_events import COURSE_COMPLETED, MODULE_COMPLETION_UPDATED
from deploy.broker import EmbeddedBroker, free_port_pair
from deploy.settings import REPO_ROOT, Settings
from deploy.topic_provisioning import apply_catalogue
from tests.support import logstore_xapi as plugin

BIN = REPO_ROOT / ".venv" / "bin"
MODULES = [("scorm", "SCORM package"), ("quiz", "Knowledge check"),
           ("assign", "Supporting Documentation"), ("resource", "Policy document")]  # fmt: skip
TERM_START = 1_775_016_000  # 2026-04-01, Toronto


def moodle_events(count: int, seed: int = 6) -> list[dict]:
    """Event data as Moodle's observers send it: a third course completions, the rest activities."""
    rng = random.Random(seed)
    events = []
    for n in range(count):
        course = rng.randrange(2, 420)
        user = rng.randrange(3, 40_000)
        when = TERM_START + n * 7 + rng.randrange(7)
        event = {
            "relateduserid": user,
            "userid": user,
            "courseid": course,
            "timecreated": when + rng.randrange(1, 90),
            "courseshortname": f"ONB-{course:03d}",
            "crud": "u",
            "edulevel": 0,
            "anonymous": 0,
        }
        if n % 3 == 0:
            event |= {
                "eventname": COURSE_COMPLETED,
                "component": "core",
                "action": "completed",
                "target": "course",
                "objecttable": "course_completions",
                "objectid": 100_000 + n,
                "contextinstanceid": course,
                "contextlevel": 50,
                "userid": 0,  # Moodle's cron marks course completion
                "timecompleted": when,
                "courseidnumber": f"HR-{course:04d}",
            }
        else:
            modname, name = MODULES[n % len(MODULES)]
            event |= {
                "eventname": MODULE_COMPLETION_UPDATED,
                "component": "core",
                "action": "updated",
                "target": "course_module_completion",
                "objecttable": "course_modules_completion",
                "objectid": 500_000 + n,
                "contextinstanceid": 1_000 + course * 20 + n % 5,
                "contextlevel": 70,
                "modname": modname,
                "activityname": name,
                "other": {"relateduserid": user, "completionstate": rng.choice((1, 1, 1, 2, 3, 0))},
            }
        events.append(event)
    return events


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def kafka() -> Iterator[Settings]:
    """The configured cluster, the embedded broker if it runs, else a throwaway broker."""
    settings = Settings.from_env()
    if not settings.uses_embedded_broker or EmbeddedBroker(settings).answers():
        print(f"Kafka: {settings.bootstrap_servers} (already running)")
        yield settings
        return
    with tempfile.TemporaryDirectory(prefix="lrx-bench-") as run_dir:
        scratch = settings.replace(broker_port=free_port_pair(), run_dir=Path(run_dir))
        broker = EmbeddedBroker(scratch)
        broker.start()
        print(f"Kafka: {scratch.bootstrap_servers} (throwaway broker, started for this run)")
        try:
            yield scratch
        finally:
            broker.stop()


def lrx_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRX_")}
    # Keep the cluster's security settings; point at the one cluster this run uses.
    env |= {k: v for k, v in os.environ.items() if k.startswith("LRX_KAFKA_")}
    return env | {"LRX_KAFKA_BOOTSTRAP": settings.bootstrap_servers, **extra}


@contextmanager
def gateway(
    settings: Settings, site: str, token: str, log: Path, profile: Path | None
) -> Iterator[str]:
    """`lrx gateway` on a free port (under pyinstrument when profiling), logging to log; its URL."""
    port = free_port()
    env = lrx_env(settings, LRX_GATEWAY_PORT=str(port), LRX_INGEST_TOKENS=f"{site}:{token}")
    command = [str(BIN / "lrx"), "gateway"]
    if profile is not None:
        command = [str(BIN / "pyinstrument"), "-o", str(profile), *command]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(_wait_ready(url, process))
        yield url
    finally:
        # SIGINT: aiohttp shuts down cleanly, and pyinstrument writes its report.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _wait_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"lrx gateway exited with {process.returncode}")
            try:
                async with session.get(f"{url}/readyz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("lrx gateway not ready in 60 s")


async def post_all(
    url: str,
    bodies: list[bytes],
    connections: int,
    path: str = "/v1/moodle/events",
    headers: dict[str, str] | None = None,
) -> tuple[float, list[float], int, list[str]]:
    """Post every body; returns elapsed seconds, request latencies, items taken, errors.

    The gateway's own endpoints answer 202 with a count; the xAPI resource answers 200
    with one statement id per statement.
    """
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    errors: list[str] = []
    accepted = 0

    async def connection(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        while not queue.empty():
            body = queue.get_nowait()
            began = time.perf_counter()
            async with session.post(f"{url}{path}", data=body, headers=headers) as r:
                answer = await r.read()
            latencies.append(time.perf_counter() - began)
            if r.status == 202:
                accepted += json.loads(answer)["accepted"]
            elif r.status == 200:
                accepted += len(json.loads(answer))
            else:
                errors.append(f"{r.status}: {answer[:200]!r}")

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(connection(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, accepted, errors


def plugin_statements(count: int, seed: int = 8) -> list[dict]:
    """What logstore_xapi sends for a hospital site: mostly views, a tenth completions."""
    rng = random.Random(seed)
    wwwroot = "https://lms.bench.example"
    when = int(time.time()) - 86_400
    statements = []
    for n in range(count):
        course = {"wwwroot": wwwroot, "user_id": 1000 + n % 5000, "course_id": 7 + n % 40,
                  "course_fullname": f"Mandatory course {n % 40}", "time": when + n}  # fmt: skip
        roll = rng.random()
        if roll < 0.05:
            statements.append(plugin.course_completed_statement(**course))
        elif roll < 0.10:
            statements.append(plugin.module_completion_statement(
                **course, cmid=300 + n % 80, modname="scorm", name="SCORM package", state=1,
            ))  # fmt: skip
        else:
            statements.append(plugin.viewed_statement(**course, cmid=300 + n % 80))
    return statements


def report(title: str, accepted: int, elapsed: float, latencies: list[float], unit: str) -> None:
    print(title)
    print(f"  accepted           {accepted:>10,} {unit} in {elapsed:.2f} s")
    print(f"  throughput         {accepted / elapsed:>10,.0f} {unit}/s"
          f"   ({len(latencies) / elapsed:,.0f} requests/s)")  # fmt: skip
    print(f"  request latency    p50 {percentile(latencies, 0.50) * 1000:.1f} ms"
          f"   p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
          f"   max {max(latencies) * 1000:.1f} ms")  # fmt: skip


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_publish(settings: Settings, site: str, file: Path) -> tuple[float, float, str]:
    """Seconds for `lrx publish` of the file, seconds of the command's start alone, its summary."""
    env = lrx_env(settings)
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "lrx"), "publish", "--help"], env=env, capture_output=True, check=True
    )
    startup = time.perf_counter() - started
    started = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "lrx"), "publish", "--format", "moodle", "--site", site, str(file)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    return elapsed, startup, f"exit {done.returncode}: {summary}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="Moodle events to send.")
    parser.add_argument("--connections", type=int, default=32, help="Concurrent HTTP connections.")
    parser.add_argument("--batch", type=int, default=100, help="Events per request.")
    parser.add_argument("--profile", action="store_true", help="Profile the gateway.")
    args = parser.parse_args()

    events = moodle_events(args.count)
    site = f"bench-{uuid.uuid4().hex[:8]}"
    token = uuid.uuid4().hex
    courses = sum(e["eventname"] == COURSE_COMPLETED for e in events)
    print(f"{args.count:,} Moodle events ({courses:,} course completions, the rest activity "
          f"completions), site {site}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="lrx-bench-ingest-") as folder, kafka() as settings:
        asyncio.run(apply_catalogue(settings))
        profile = Path(folder) / "gateway-profile.txt" if args.profile else None
        log = Path(folder) / "gateway.log"
        bodies = [json.dumps(events[i : i + args.batch]).encode()
                  for i in range(0, len(events), args.batch)]  # fmt: skip
        statements = plugin_statements(args.count)
        _, _, plugin_headers, _ = plugin.plugin_request([], site, token)
        plugin_bodies = [plugin.php_json(statements[i : i + args.batch]).encode()
                         for i in range(0, len(statements), args.batch)]  # fmt: skip
        bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with gateway(settings, site, token, log, profile) as url:
            elapsed, latencies, accepted, errors = asyncio.run(
                post_all(url, bodies, args.connections, headers=bearer)
            )
            x_elapsed, x_latencies, x_accepted, x_errors = asyncio.run(
                post_all(url, plugin_bodies, args.connections, "/xapi/statements", plugin_headers)
            )
        report(f"\ngateway: {args.connections} connections, {args.batch} events per request",
               accepted, elapsed, latencies, "events")  # fmt: skip
        completions = sum(s["verb"]["id"].endswith("/completed") for s in statements)
        report(f"\ngateway /xapi/statements, as logstore_xapi posts ({completions:,} of "
               f"{len(statements):,} completions; Basic auth; 200 + ids)",
               x_accepted, x_elapsed, x_latencies, "statements")  # fmt: skip
        for failed in (errors, x_errors):
            if failed:
                print(f"  {len(failed)} requests failed, e.g. {failed[0]}")
                print(f"  gateway log ends:\n{log.read_text(errors='replace')[-3000:]}")

        file = Path(folder) / "events.jsonl"
        file.write_text("".join(json.dumps(e) + "\n" for e in events))
        elapsed, startup, summary = run_publish(settings, site, file)
        print(f"\n`lrx publish --format moodle` of the same {args.count:,} events")
        print(f"  end to end         {args.count / elapsed:>10,.0f} events/s   ({elapsed:.2f} s, "
              f"of which ~{startup:.2f} s starting the command)")  # fmt: skip
        print(f"  without the start  {args.count / (elapsed - startup):>10,.0f} events/s")
        print(f"  {summary}")
        if profile is not None:
            print(f"\ngateway profile (pyinstrument):\n{profile.read_text()}")


if __name__ == "__main__":
    sys.exit(main())
