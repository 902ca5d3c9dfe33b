"""`lrx recipients` on a real broker and with an unreachable one (the rules for building a value are
in tests/unit/test_course_subscriptions.py)."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from click.testing import CliRunner

from deploy.cli import recipients
from deploy.settings import Settings
from deploy.topic_provisioning import apply_catalogue
from deploy.wiring import kafka_connection
from schemas.codec import Codec
from schemas.topics import COURSE_RECIPIENTS


async def course_messages(settings: Settings) -> list[tuple[bytes, dict]]:
    """Every message of lrx.course-recipients, decoded, in order."""
    codec = Codec.default()
    consumer = AIOKafkaConsumer(
        auto_offset_reset="earliest", **kafka_connection(settings).client_options()
    )
    await consumer.start()
    try:
        tp = TopicPartition(COURSE_RECIPIENTS, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        found = []
        while await consumer.position(tp) < end:
            for batch in (await consumer.getmany(tp, timeout_ms=5000)).values():
                found += [(m.key, codec.decode("CourseRecipients", m.value)) for m in batch]
        return found
    finally:
        await consumer.stop()


@pytest.mark.kafka
def test_add_remove_list_round_trip(fresh_broker):
    settings = fresh_broker()
    asyncio.run(apply_catalogue(settings))

    def lrx(*args: str):
        return CliRunner().invoke(recipients.command, list(args), obj=settings)

    assert lrx("list").stdout == "no course subscriptions\n"

    added = lrx("add", "c1", "tahsn", "--site", "north", "--require-activity", "12",
                "--require-activity", "13", "--changed-by", "ops")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.stdout.splitlines()[0] == "before: (not subscribed)"
    assert added.stdout.splitlines()[-1] == "published to lrx.course-recipients"

    # tahsn already means cmars: adding cmars changes nothing and publishes nothing.
    again = lrx("add", "c1", "CMaRS", "--site", "north", "--changed-by", "ops")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("no change: site north course c1: recipients tahsn (= cmars);")

    dry = lrx("add", "c2", "cmars", "--site", "north", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines()[-1] == "dry run: nothing published"

    unknown = lrx("add", "c1", "acme", "--site", "north")
    assert unknown.exit_code == 1
    assert (
        unknown.stderr
        == "Error: recipient: unknown recipient 'acme'; known: cmars, tahsn (= cmars)\n"
    )

    assert lrx("add", "c1", "cmars", "--site", "south", "--changed-by", "ops").exit_code == 0

    listed = lrx("list", "--site", "north", "--json")
    assert [json.loads(line) for line in listed.stdout.splitlines()] == [
        {
            "site": "north", "course_id": "c1", "recipients": ["tahsn"],
            "resolved_recipients": ["cmars"], "required_activities": ["12", "13"],
            "changed_by": "ops",
            "changed_at": json.loads(listed.stdout.splitlines()[0])["changed_at"],
        }
    ]  # fmt: skip

    removed = lrx("remove", "c1", "cmars", "--site", "north", "--changed-by", "ann")
    assert removed.exit_code == 0, removed.output
    assert "after:  site north course c1: recipients none; required activities 12, 13 " in (
        removed.stdout
    )
    not_there = lrx("remove", "c1", "tahsn", "--site", "north")
    assert not_there.exit_code == 1
    assert "course c1 of site north does not subscribe cmars (its recipients: none)" in (
        not_there.stderr
    )

    by_course = lrx("list", "--course", "c1")
    assert [line.split(":")[0] for line in by_course.stdout.splitlines()] == [
        "site north course c1",
        "site south course c1",
    ]

    # Exactly one message per real change, each the course's full value.
    messages = asyncio.run(course_messages(settings))
    assert [(key, m["recipients"], m["required_activities"], m["changed_by"])
            for key, m in messages] == [
        (b"north/c1", ["tahsn"], ["12", "13"], "ops"),
        (b"south/c1", ["cmars"], [], "ops"),
        (b"north/c1", [], ["12", "13"], "ann"),
    ]  # fmt: skip


def test_an_unreachable_kafka_is_reported_not_waited_for():
    settings = Settings.from_env({}).replace(kafka_bootstrap="127.0.0.1:1")
    result = CliRunner().invoke(
        recipients.command, ["add", "c1", "cmars", "--site", "north"], obj=settings
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: reading lrx.course-recipients from 127.0.0.1:1 failed: KafkaConnectionError("
    )
