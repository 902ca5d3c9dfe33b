"""The README's run command: the whole pipeline on its embedded broker, fed and stopped.

Runs `bash deploy/run.sh` exactly as a newcomer would (with ports and a run
folder of its own), posts Moodle events and xAPI statements through the
gateway, checks they reach the CMaRS emulator, runs `lrx demo`, stops the
stack with Ctrl-C and checks that no process it started is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.lms.formats import LmsContext, map_batch
from connectors.lms.xapi_statements import statement_id_of
from deploy.broker import free_port_pair
from deploy.settings import REPO_ROOT
from tests.support import logstore_xapi as plugin
from tests.support.lms import course_completed

pytestmark = pytest.mark.kafka

OCI_ID = "CA-ON-CPSO-24680"
PLUGIN_COURSE = {
    "wwwroot": "https://sunnybrook.example", "user_id": 55, "course_id": 7,
    "course_fullname": "Fire Safety",
}  # fmt: skip


def _processes_using(run_dir: Path) -> list[str]:
    """Processes whose environment or command line names this test's run folder."""
    marker = str(run_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (
                marker in (entry / "environ").read_bytes()
                or marker in (entry / "cmdline").read_bytes()
            ):
                found.append(f"{entry.name}: {(entry / 'cmdline').read_bytes()[:200]!r}")
        except OSError:
            continue
    return found


def _call(method: str, url: str, body: object | None = None, token: str | None = None) -> dict:
    request = urllib.request.Request(url, method=method)
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"{}")


def _get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def _plugin_post(endpoint: str, statements: list[dict]) -> list[str]:
    """POST a batch exactly as logstore_xapi does; it counts only a 200 as success."""
    method, suffix, headers, body = plugin.plugin_request(statements, "sunnybrook", "sb-token")
    request = urllib.request.Request(endpoint + suffix, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
        return json.loads(answer.read())


def _trace(env: dict[str, str], user: str, done, timeout: float = 60) -> str:
    """`lrx trace` output for a user once `done(output)` holds; fails at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run(
            [str(Path(sys.executable).with_name("lrx")), "trace", "--site", "sunnybrook",
             "--user", user],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        if done(result.stdout):
            return result.stdout
        assert time.monotonic() < deadline, f"trace of {user} never got there:\n{result.stdout}"
        time.sleep(1)


def test_run_command_serves_the_pipeline_and_leaves_nothing_behind(tmp_path):
    run_dir = tmp_path / "run"
    gateway, emulator, metrics = free_port_pair(), free_port_pair(), free_port_pair()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRX_")}
    env |= {
        "LRX_RUN_DIR": str(run_dir),
        "LRX_BROKER_PORT": str(free_port_pair()),
        "LRX_GATEWAY_PORT": str(gateway),
        "LRX_EMULATOR_PORT": str(emulator),
        "LRX_INGEST_TOKENS": "sunnybrook:sb-token",
        "LRX_METRICS_PORT": str(metrics),
    }
    output = tmp_path / "up.out"
    with open(output, "wb") as out:
        stack = subprocess.Popen(
            ["bash", "deploy/run.sh"], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 180
        while b"lrx is up" not in output.read_bytes():
            assert stack.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.5)

        base = f"http://127.0.0.1:{gateway}"
        _call("PUT", f"{base}/v1/courses/42/recipients", {"recipients": ["tahsn"]}, "sb-token")
        _call(
            "POST",
            f"{base}/v1/users",
            {"id": 55, "username": "drsmith", "ociid": OCI_ID},
            "sb-token",
        )
        moodle = _call(
            "POST", f"{base}/v1/moodle/events", course_completed(courseid=42), "sb-token"
        )
        # Course 7 requires module 33: what logstore_xapi sends when the physician
        # finishes the SCORM module and then the course, posted twice (a resend).
        _call(
            "PUT",
            f"{base}/v1/courses/7/recipients",
            {"recipients": ["cmars"], "required_activities": ["33"]},
            "sb-token",
        )
        plugin_batch = [
            plugin.module_completion_statement(
                **PLUGIN_COURSE, cmid=33, modname="scorm", name="Fire Safety SCORM", state=1,
                time=datetime(2026, 10, 2, 8, 0, tzinfo=UTC),
            ),
            plugin.viewed_statement(**PLUGIN_COURSE, time=datetime(2026, 10, 2, 8, 5, tzinfo=UTC)),
            plugin.course_completed_statement(
                **PLUGIN_COURSE, time=datetime(2026, 10, 2, 9, 0, tzinfo=UTC)
            ),
        ]  # fmt: skip
        for _ in range(2):
            ids = _plugin_post(f"{base}/xapi", plugin_batch)
            assert ids == [statement_id_of(s) for s in plugin_batch]
        context = LmsContext("sunnybrook")
        now = datetime.now(UTC)
        plugin_ids = [r["record_id"] for r in map_batch("xapi", plugin_batch, context, now).records]
        expected = set(moodle["record_ids"] + plugin_ids)
        assert len(expected) == 3

        cmars = f"http://127.0.0.1:{emulator}"
        deadline = time.monotonic() + 90
        while True:
            _call("POST", f"{cmars}/admin/refresh", {})
            seen = _call("GET", f"{cmars}/admin/records")
            delivered = {r["record_id"] for r in seen["records"]}
            if expected <= delivered or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert expected <= delivered, f"not delivered: {expected - delivered}"
        assert seen["acceptances"] == seen["accepted"], "the resent batch reached CMaRS once"
        by_id = {r["record_id"]: r for r in seen["records"]}
        module_record, course_record = (by_id[i] for i in plugin_ids)
        assert (module_record["source"], module_record["activity"]["cmid"]) == (
            "activity_completion",
            "33",
        )
        assert (course_record["source"], course_record["activity"]) == ("course_completion", None)

        # One LRX_METRICS_PORT for the stack: the worker serves it, the sink the next port.
        worker_metrics = _get_text(f"http://127.0.0.1:{metrics}/metrics")
        sink_metrics = _get_text(f"http://127.0.0.1:{metrics + 1}/metrics")
        assert "lrx_worker_events_total" in worker_metrics
        delivered_line = (
            'lrx_sink_records_delivered_total{outcome="accepted",recipient="cmars"} '
            f"{float(len(expected))}"
        )
        assert delivered_line in sink_metrics, sink_metrics

        # What an LMS admin sees for the physician: the records delivered with receipts,
        # a course nobody subscribed, and a colleague with no OCI ID held as pending.
        _call("POST", f"{base}/v1/users", {"id": 56, "username": "drjones"}, "sb-token")
        _call("POST", f"{base}/v1/moodle/events", course_completed(courseid=43), "sb-token")
        _call("POST", f"{base}/v1/moodle/events", course_completed(relateduserid=56), "sb-token")
        physician = _trace(env, "55", lambda text: "no_recipient" in text)
        assert physician.count("cmars: DELIVERED") == 3, physician  # course 42, module 33, course 7
        assert OCI_ID in physician
        assert "course 43: NOT SUBSCRIBED" in physician
        colleague = _trace(env, "56", lambda text: "PENDING" in text)
        assert "PENDING (no_oci_id" in colleague, colleague

        demo = subprocess.run(
            [str(Path(sys.executable).with_name("lrx")), "demo", "--practitioners", "40"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "every record is accounted for" in demo.stdout
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(90)
        except subprocess.TimeoutExpired:
            stack.kill()
            raise
    log = output.read_text()
    assert stack.returncode == 0, log
    assert log.index("stopped gateway") < log.index("stopped worker") < log.index("stopped broker")
    assert _processes_using(run_dir) == []


def test_components_die_with_lrx_up_when_it_is_killed(tmp_path):
    """SIGKILL gives `lrx up` no chance to stop anything: the kernel must (PR_SET_PDEATHSIG)."""
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRX_")}
    env |= {
        "LRX_RUN_DIR": str(run_dir),
        "LRX_BROKER_PORT": str(free_port_pair()),
        "LRX_GATEWAY_PORT": str(free_port_pair()),
        "LRX_EMULATOR_PORT": str(free_port_pair()),
        "LRX_METRICS_PORT": str(free_port_pair()),
        "LRX_INGEST_TOKENS": "sunnybrook:sb-token",
    }
    lrx = str(Path(sys.executable).with_name("lrx"))
    output = tmp_path / "up.out"
    with open(output, "wb") as out:
        stack = subprocess.Popen(
            [lrx, "up"], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 180
        while b"lrx is up" not in output.read_bytes():
            assert stack.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.5)
        broker_pid = int((run_dir / f"kafka-{env['LRX_BROKER_PORT']}" / "broker.pid").read_text())
        components = [p for p in _processes_using(run_dir) if not p.startswith(f"{broker_pid}:")]
        assert len(components) >= 4, components  # emulator, worker, sink, gateway

        stack.kill()
        stack.wait(10)
        deadline = time.monotonic() + 30
        while left := [p for p in _processes_using(run_dir) if not p.startswith(f"{broker_pid}:")]:
            assert time.monotonic() < deadline, f"outlived lrx up: {left}"
            time.sleep(0.5)
    finally:
        if stack.poll() is None:
            stack.kill()
        # The broker is not a component: it keeps its data and stops only when told to.
        subprocess.run([lrx, "broker", "stop"], env=env, capture_output=True, timeout=60)
    assert _processes_using(run_dir) == []
