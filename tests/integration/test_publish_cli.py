"""`lrx publish`: JSON Lines straight to Kafka, rejected lines reported by number."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from click.testing import CliRunner

from deploy.cli import main
from deploy.topic_provisioning import apply_catalogue
from schemas.topics import LEARNING_RECORDS
from tests.support.kafka import read_all
from tests.support.lms import course_completed, module_completion

pytestmark = pytest.mark.kafka


def test_publish_reports_rejected_lines_and_publishes_the_rest(fresh_broker, tmp_path):
    settings = fresh_broker()
    asyncio.run(apply_catalogue(settings))
    bad = course_completed()
    del bad["relateduserid"]
    lines = [
        json.dumps(course_completed()),
        json.dumps(bad),
        "",
        "{not json",
        json.dumps(module_completion(1)),
        json.dumps({"eventname": "\\core\\event\\user_loggedin"}),
    ]
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRX_")}
    env["LRX_BROKER_PORT"] = str(settings.broker_port)

    dry = CliRunner().invoke(
        main, ["publish", "--format", "moodle", "--site", "s1", "--dry-run", str(source)], env=env
    )
    assert dry.exit_code == 1
    assert "would publish 2, ignored 1 (no completion), rejected 2" in dry.output

    result = CliRunner().invoke(
        main, ["publish", "--format", "moodle", "--site", "s1", str(source)], env=env
    )
    assert result.exit_code == 1, result.output
    assert "line 2: relateduserid: missing" in result.output
    assert "line 4: not valid JSON" in result.output
    assert "published 2, ignored 1 (no completion), rejected 2" in result.output

    stored = asyncio.run(read_all(settings, LEARNING_RECORDS, "LearningRecord"))
    assert sorted((r["site"], r["source"]) for r in stored) == [
        ("s1", "activity_completion"),
        ("s1", "course_completion"),
    ]
