"""The local stack behind `lrx up`: broker, topics, and one process per component.

Each component runs as its own `lrx` subprocess, exactly as ops would run it in
production, with its output in `<run dir>/logs/<name>.log`. The stack stops its
components in the reverse order of starting them (the gateway first, so no new
input arrives; the broker last), and stops nothing it did not start.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout

from deploy.broker import EmbeddedBroker
from deploy.settings import Settings
from deploy.topic_provisioning import apply_catalogue
from schemas.errors import LrxError

__all__ = ["Component", "LocalStack", "StackError", "components_of"]

log = logging.getLogger(__name__)

LRX = str(Path(sys.executable).with_name("lrx"))
PR_SET_PDEATHSIG = 1


class StackError(LrxError, RuntimeError):
    """A component did not start; the message names it and quotes its log."""


@dataclass
class Component:
    name: str
    args: list[str]
    address: str = ""  # where it listens, for the start-up summary
    health_url: str = ""  # answered 200 once it is ready; empty: alive is ready
    env: dict[str, str] = field(default_factory=dict)  # settings of this component only
    process: subprocess.Popen | None = field(default=None, repr=False)


def components_of(settings: Settings, with_emulator: bool) -> list[Component]:
    """The components of the pipeline, in start order."""
    components = []
    if with_emulator:
        emulator = f"http://{settings.emulator_host}:{settings.emulator_port}"
        components.append(
            Component(
                "emulator", ["emulator", "cmars"], f"{emulator} (CMaRS emulator)",
                f"{emulator}/lrx/v1/openapi.yaml",
            )
        )  # fmt: skip
    # One LRX_METRICS_PORT for the stack: the worker takes it, the sink the next port,
    # since two processes cannot listen on one port.
    worker_metrics, sink_metrics = _metrics_ports(settings.metrics_port)
    components.append(
        Component(
            "worker", ["worker"], f"stream worker (Faust), {_metrics_note(worker_metrics)}",
            env={"LRX_METRICS_PORT": str(worker_metrics)},
        )
    )  # fmt: skip
    cmars_url = settings.cmars_endpoint[0]  # the emulator above when LRX_CMARS_URL is empty
    components.append(
        Component(
            "sink", ["sink", "cmars"], f"CMaRS sink -> {cmars_url}, {_metrics_note(sink_metrics)}",
            env={"LRX_METRICS_PORT": str(sink_metrics)},
        )
    )  # fmt: skip
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    components.append(
        Component("gateway", ["gateway"], f"{gateway} (ingest gateway)", f"{gateway}/healthz")
    )
    return components


def _metrics_ports(port: int) -> tuple[int, int]:
    return (port, port + 1) if port else (0, 0)


def _metrics_note(port: int) -> str:
    return f"metrics on :{port}/metrics" if port else "no metrics (LRX_METRICS_PORT=0)"


def _die_with_parent() -> None:
    # If `lrx up` itself is killed, the kernel sends the children SIGTERM, so no
    # component outlives the stack that started it.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class LocalStack:
    def __init__(self, settings: Settings, components: list[Component]):
        self.settings = settings
        self.components = components
        self.logs = settings.run_dir / "logs"
        self.broker = EmbeddedBroker(settings) if settings.uses_embedded_broker else None
        self.started_broker = False
        self.started: list[Component] = []

    def start(self, say: Callable[[str], None]) -> None:
        if self.broker is not None:
            if self.broker.running_pid() is None:
                self.broker.start()
                self.started_broker = True
                say(f"broker    {self.broker.address} (embedded, data in {self.broker.data_dir})")
            else:
                say(f"broker    {self.broker.address} (already running; left as it is)")
        else:
            say(f"broker    {self.settings.bootstrap_servers} (external)")
        created = asyncio.run(apply_catalogue(self.settings))
        say(f"topics    {len(created)} created or fixed" if created else "topics    up to date")
        self.logs.mkdir(parents=True, exist_ok=True)
        for component in self.components:
            self._start(component)
            say(f"{component.name:<9} {component.address}  (log: {self._log(component)})")

    def _log(self, component: Component) -> Path:
        return self.logs / f"{component.name}.log"

    def _start(self, component: Component) -> None:
        with open(self._log(component), "ab") as out:
            component.process = subprocess.Popen(
                [LRX, *component.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **component.env},
                start_new_session=True,  # Ctrl-C reaches `lrx up`, which stops them in order
                preexec_fn=_die_with_parent,
            )
        self.started.append(component)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if component.process.poll() is not None:
                code = component.process.returncode
                raise StackError(
                    f"{component.name} exited with code {code} while starting. "
                    f"Last lines of {self._log(component)}:\n{self._tail(component)}"
                )
            if not component.health_url or asyncio.run(_answers(component.health_url)):
                return
            time.sleep(0.3)
        raise StackError(f"{component.name} was not ready within 60s:\n{self._tail(component)}")

    def _tail(self, component: Component, lines: int = 20) -> str:
        text = self._log(component).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def exited(self) -> Component | None:
        """A component that stopped on its own, if any."""
        return next((c for c in self.started if c.process.poll() is not None), None)

    def stop(self, say: Callable[[str], None], timeout: float = 30.0) -> None:
        """Stop what this stack started, newest first; SIGKILL what ignores SIGTERM."""
        for component in reversed(self.started):
            process = component.process
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    log.warning("%s ignored SIGTERM for %.0fs; killing it", component.name, timeout)
                    process.kill()
                    process.wait()
            say(f"stopped {component.name} (exit {process.returncode})")
        self.started.clear()
        if self.started_broker and self.broker is not None:
            self.broker.stop()
            self.started_broker = False
            say("stopped broker")

    def pids(self) -> list[int]:
        return [c.process.pid for c in self.started if c.process is not None]


async def _answers(url: str) -> bool:
    try:
        async with (
            ClientSession(timeout=ClientTimeout(total=2)) as session,
            session.get(url) as response,
        ):
            return response.status == 200
    except (OSError, TimeoutError):
        return False
