"""Fuzzing the ingest gateway: no input, however odd, gets a 5xx.

Schemathesis reads /openapi.yaml from a real `lrx gateway` process writing to
the real broker, and checks every answer is not a server error and matches the
documented responses. Its generators avoid some text on purpose (lone
surrogates, which it deems unsendable although JSON escapes send them fine) and
rarely hit others (digits of other scripts, date-times at the edge of the
calendar), so a body hook puts such values into random leaves of what it
generates. The cases it found are pinned below as plain regression tests.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from hypothesis import strategies as st

from deploy.settings import REPO_ROOT, Settings
from deploy.topic_provisioning import apply_catalogue

pytestmark = pytest.mark.kafka

SITE = "fuzz-site"
EXAMPLES_PER_OPERATION = 100

# Values schemathesis does not (or seldom) generate, each of which once got a 500.
TRICKY_TEXT = st.one_of(
    # Lone surrogates (Cs): valid JSON (\ud800), not encodable as UTF-8.
    # Other-script and superscript digits (Nd, No): str.isdigit() is True, int() may fail.
    st.text(st.characters(categories=["Cs", "Nd", "No"]), min_size=1, max_size=4),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",  # before datetime.min once moved to UTC
            "9999-12-31T23:59:59-14:00",  # after datetime.max once moved to UTC
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
        ]
    ),
)
TRICKY = st.one_of(TRICKY_TEXT, st.sampled_from([-(2**63), 2**63, 2**64 + 1, 0, -1]))


@dataclass
class Gateway:
    url: str
    token: str
    log: Path

    def mark(self) -> int:
        return self.log.stat().st_size

    def tracebacks(self, since: int = 0) -> str:
        """The gateway's own account of its errors after `since`, for a failure message."""
        with self.log.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        blocks = text.split("Traceback (most recent call last):")[1:]
        return "\n---\n".join(block[-2000:] for block in blocks[-3:]) or "(no traceback)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
async def gateway(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    """`lrx gateway` as a subprocess on a free port, with a token made for this run."""
    await apply_catalogue(settings)
    token = uuid.uuid4().hex
    port = free_port()
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    env = {
        **os.environ,
        "LRX_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "LRX_GATEWAY_PORT": str(port),
        "LRX_INGEST_TOKENS": f"{SITE}:{token}",
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("lrx")), "gateway"],
            env=env,
            stdout=output,
            stderr=output,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{url}/readyz"):
            assert process.poll() is None, f"lrx gateway exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"lrx gateway not ready in 60 s:\n{log.read_text()}"
            time.sleep(0.1)
        yield Gateway(url, token, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


COURSE_COMPLETED = {
    "eventname": "\\core\\event\\course_completed",
    "relateduserid": "5",
    "courseid": 2,
    "timecreated": 1767225600,
}
LEARNING_RECORD = {
    "user_id": "1",
    "course": {"id": "2"},
    "completion_state": "complete",
    "source": "course_completion",
    "completed_at": "2026-01-01T00:00:00Z",
}
STATEMENT = {
    "actor": {"account": {"homePage": "https://lms.example", "name": "3"}},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
    "object": {
        "id": "https://lms.example/course/view.php?id=4",
        "definition": {"name": {"en": "Hand hygiene"}},
    },
    "timestamp": "2026-01-01T00:00:00Z",
}
MODULE_COMPLETION = {
    "eventname": "\\core\\event\\course_module_completion_updated",
    "relateduserid": 5,
    "courseid": 2,
    "contextinstanceid": 77,
    "timecreated": 1767225600,
    "other": {"completionstate": 1},
}
USER = {"id": 7, "username": "drsmith", "ociid": "CA-ON-CPSO-12345", "timemodified": 1767225600}
RECIPIENTS = {"recipients": ["cmars"], "required_activities": ["77"], "changed_by": "admin"}

# Bodies the gateway accepts: a tricky value put into one of their leaves reaches the mapping,
# where one put into a body rejected for other reasons would not.
VALID_BODIES = {
    "/v1/moodle/events": [COURSE_COMPLETED, [COURSE_COMPLETED, MODULE_COMPLETION]],
    "/v1/learning-records": [LEARNING_RECORD],
    "/xapi/statements": [STATEMENT],
    "/v1/users": [USER],
    "/v1/courses/{course}/recipients": [RECIPIENTS],
}


@schemathesis.hook
def before_generate_body(context: Any, strategy: st.SearchStrategy) -> st.SearchStrategy:
    """Loaded by the schemathesis run below (SCHEMATHESIS_HOOKS names this module)."""
    mutated = strategy.flatmap(lambda body: st.one_of(st.just(body), with_tricky_leaf(body)))
    valid = VALID_BODIES.get(context.operation.path) if context.operation else None
    if not valid:
        return mutated
    return st.one_of(mutated, st.sampled_from(valid).flatmap(with_tricky_leaf))


def _leaf_paths(value: object, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaf_paths(item, (*path, index))
    else:
        yield path


@st.composite
def with_tricky_leaf(draw: st.DrawFn, body: object) -> object:
    """The body with one leaf (string, number, boolean, null) replaced by a tricky value."""
    paths = list(_leaf_paths(body))
    if not paths:
        return body
    path = draw(st.sampled_from(paths))
    value = draw(TRICKY)
    if not path:
        return value
    changed = copy.deepcopy(body)
    parent = changed
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return changed


def test_no_generated_input_gets_a_server_error(gateway: Gateway, tmp_path: Path) -> None:
    # The CLI rather than schemathesis' pytest plugin: the plugin does not run under pytest 9.2.
    mark = gateway.mark()
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")), "run",
            f"{gateway.url}/openapi.yaml",
            "--header", f"Authorization: Bearer {gateway.token}",
            "--checks", "not_a_server_error,response_schema_conformance",
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", str(EXAMPLES_PER_OPERATION),
            "--workers", "1",
            "--generation-database", "none",
            "--suppress-health-check", "all",
            "--warnings", "off",
            "--no-color",
        ],
        env={**os.environ, "SCHEMATHESIS_HOOKS": __name__, "PYTHONPATH": str(REPO_ROOT)},
        cwd=tmp_path,  # schemathesis keeps a cache of crashes in the working folder
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, (
        f"schemathesis found problems (exit {run.returncode}):\n{run.stdout}\n{run.stderr}\n"
        f"gateway log:\n{gateway.tracebacks(since=mark)}"
    )


# --- What the fuzzer found, pinned: each got a 500 before it was fixed.

LONE_SURROGATE = "\ud800"


def _with(body: dict, **changes: Any) -> str:
    return json.dumps({**body, **changes})


FOUND = {
    "lone surrogate in a Moodle id": (
        "POST /v1/moodle/events",
        _with(COURSE_COMPLETED, relateduserid=LONE_SURROGATE),
        "relateduserid",
    ),
    "superscript digit as a Moodle time": (
        "POST /v1/moodle/events",
        _with(COURSE_COMPLETED, timecreated="²"),
        "timecreated",
    ),
    "date-time before year 1 in UTC": (
        "POST /v1/learning-records",
        _with(LEARNING_RECORD, completed_at="0001-01-01T00:00:00+14:00"),
        "completed_at",
    ),
    "date-time after year 9999 in UTC": (
        "POST /v1/learning-records",
        _with(LEARNING_RECORD, completed_at="9999-12-31T23:59:59-14:00"),
        "completed_at",
    ),
    "lone surrogate in an xAPI course name": (
        "POST /xapi/statements",
        _with(
            STATEMENT,
            object={**STATEMENT["object"], "definition": {"name": {"en": LONE_SURROGATE}}},
        ),
        "object.definition.name.en",
    ),
    "lone surrogate in a user name": (
        "POST /v1/users",
        json.dumps({"id": 7, "username": LONE_SURROGATE}),
        "username",
    ),
    "lone surrogate in a required activity": (
        "PUT /v1/courses/fuzz-course/recipients",
        _with(RECIPIENTS, required_activities=[LONE_SURROGATE]),
        "required_activities[0]",
    ),
    "arrays nested past the JSON parser's recursion limit": (
        "POST /v1/moodle/events",
        "[" * 100_000 + "]" * 100_000,
        "",
    ),
}


@pytest.mark.parametrize("request_line, body, path", FOUND.values(), ids=FOUND.keys())
async def test_what_the_fuzzer_found_is_a_400_naming_the_field(
    gateway: Gateway, request_line: str, body: str, path: str
) -> None:
    method, endpoint = request_line.split()
    headers = {"Authorization": f"Bearer {gateway.token}", "Content-Type": "application/json"}
    if endpoint.startswith("/xapi/"):
        headers["X-Experience-API-Version"] = "1.0.3"  # or the 400 is about the header
    mark = gateway.mark()
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{gateway.url}{endpoint}", data=body, headers=headers) as answer,
    ):
        text = await answer.text()
        assert answer.status == 400, f"{answer.status}: {text}\n{gateway.tracebacks(since=mark)}"
        assert path in [problem["path"] for problem in json.loads(text)["errors"]], text
