"""The embedded Apache Kafka broker: one KRaft node, broker and controller in one, on 127.0.0.1.

Its jars come from Maven Central (deploy/kafka/pom.xml). Each broker lives in its
own folder under the run dir, named after its port, holding its data, log, config
and PID file, so tests can run a second broker beside the main one.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from deploy.settings import REPO_ROOT, Settings
from schemas.errors import LrxError

__all__ = ["EmbeddedBroker", "BrokerError", "BrokerStatus", "answers_metadata", "free_port_pair"]

log = logging.getLogger(__name__)

KAFKA_DIR = REPO_ROOT / "deploy" / "kafka"
MAIN_CLASS = "kafka.Kafka"


class BrokerError(LrxError, RuntimeError):
    """The embedded broker could not be fetched, started or stopped; the message says why."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    address: str
    data_dir: Path
    log_file: Path

    def describe(self) -> str:
        state = f"up (pid {self.pid})" if self.running else "down"
        return (
            f"broker {state}\n  address: {self.address}\n"
            f"  data:    {self.data_dir}\n  log:     {self.log_file}"
        )


class EmbeddedBroker:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.home = settings.run_dir / f"kafka-{settings.broker_port}"
        self.data_dir = self.home / "data"
        self.log_file = self.home / "broker.log"
        self.pid_file = self.home / "broker.pid"
        self.config_file = self.home / "server.properties"
        self.address = f"127.0.0.1:{settings.broker_port}"

    # --- jars

    def jars_present(self) -> bool:
        libs = self.settings.kafka_libs_dir
        return libs.is_dir() and any(libs.glob("kafka_2.13-*.jar"))

    def fetch_jars(self) -> None:
        """Copy the broker's runtime jars from Maven Central into the libs folder."""
        if self.jars_present():
            return
        if shutil.which("mvn") is None:
            raise BrokerError("Maven (mvn) is not installed; it fetches the Kafka jars")
        libs = self.settings.kafka_libs_dir
        command = [
            "mvn", "-q", "-B", "-f", str(KAFKA_DIR / "pom.xml"),
            "dependency:copy-dependencies", "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not self.jars_present():
            raise BrokerError(
                f"fetching the Kafka jars failed (exit {done.returncode}):\n"
                f"{(done.stdout + done.stderr)[-3000:]}"
            )

    # --- lifecycle

    def running_pid(self) -> int | None:
        """The recorded PID if that process is alive and is our broker; else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        # The PID may have been reused by another process since we recorded it.
        if MAIN_CLASS.encode() in cmdline and str(self.config_file).encode() in cmdline:
            return pid
        return None

    def status(self) -> BrokerStatus:
        pid = self.running_pid()
        return BrokerStatus(pid is not None, pid, self.address, self.data_dir, self.log_file)

    def start(self) -> BrokerStatus:
        """Start the broker and return once it answers a metadata request.

        Starting a broker that is already running succeeds and changes nothing.
        """
        if self.running_pid() is not None:
            return self.status()
        if not self.jars_present():
            self.fetch_jars()
        self.home.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not (self.data_dir / "meta.properties").exists():
            self._format_storage()
        with open(self.log_file, "ab") as log_out:
            process = subprocess.Popen(
                self._java_command(MAIN_CLASS, str(self.config_file)),
                stdout=log_out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the shell must not kill the broker
                cwd=self.home,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        deadline = time.monotonic() + self.settings.broker_start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"the broker exited with code {process.returncode} while starting.\n"
                    f"Last lines of {self.log_file}:\n{self.log_tail()}"
                )
            if self.answers():
                return self.status()
            time.sleep(0.3)
        self.stop()
        raise BrokerError(
            f"the broker at {self.address} did not answer within "
            f"{self.settings.broker_start_timeout:.0f}s.\n"
            f"Last lines of {self.log_file}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker this folder recorded, and nothing else. True if one was running."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            log.warning("broker pid %s ignored SIGTERM for %.0fs; killing it", pid, timeout)
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def answers(self) -> bool:
        """True when the broker answers a metadata request. Safe to call inside an event loop."""
        # asyncio.run refuses to nest inside a running loop (async tests, `lrx up`),
        # so the probe gets a loop of its own in a worker thread.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, answers_metadata(self.address)).result()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log yet)"

    # --- internals

    def _java_command(self, main_class: str, *args: str) -> list[str]:
        heap = self.settings.broker_heap
        return [
            "java", f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.home}",
            "-cp", f"{self.settings.kafka_libs_dir}/*",
            main_class, *args,
        ]  # fmt: skip

    def _format_storage(self) -> None:
        # Kafka's cluster ids are 16 random bytes in unpadded url-safe base64. Like Kafka's
        # own Uuid.randomUuid, refuse a leading "-": the command line would read it as a flag.
        cluster_id = "-"
        while cluster_id.startswith("-"):
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        command = self._java_command(
            "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config_file)
        )
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise BrokerError(f"formatting {self.data_dir} failed:\n{done.stdout}{done.stderr}")

    def _write_config(self) -> None:
        port, controller = self.settings.broker_port, self.settings.controller_port
        template = (KAFKA_DIR / "server.properties").read_text()
        self.config_file.write_text(
            template.format(port=port, controller_port=controller, data_dir=self.data_dir)
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours still "exists"; reap it so it stops counting as alive.
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        return reaped == 0
    except ChildProcessError:
        return True


async def answers_metadata(bootstrap: str, **client_options) -> bool:
    """True when the cluster answers a metadata request with at least one broker."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    # Knock first: aiokafka logs every refused connection at ERROR, and while a
    # broker starts, refusals are expected rather than worth an operator's attention.
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 3)
    except (OSError, TimeoutError):
        return False
    writer.close()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=3000, **client_options
    )
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return False
    finally:
        await admin.close()


def free_port_pair() -> int:
    """A port p such that p and p + 1 are both free (a broker's client and controller ports).

    Drawn below the kernel's ephemeral range, so that an outgoing client
    connection cannot take the controller port between this check and the bind.
    """
    low_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        port = random.randrange(20000, low_ephemeral - 2)
        try:
            for candidate in (port, port + 1):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no two adjacent free ports below the ephemeral range")
