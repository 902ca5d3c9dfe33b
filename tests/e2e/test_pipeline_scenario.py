"""The scripted scenario: every case of the pipeline, against a real broker and `lrx worker`.

Phase 1 publishes subscriptions, profiles and records and waits for the
intermediate state; phase 2 fixes profiles and completes a required activity,
releasing held records; phase 3 restarts the worker with its clock in the next
reporting period, so the records still held close with their reasons. Each
phase asserts the exact contents of the outbox, lrx.ineligible and lrx.pending.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from deploy.topic_provisioning import apply_catalogue
from schemas.topics import INELIGIBLE, PENDING, PIPELINE_DEAD_LETTERS, outbox_topic
from tests.support.pipeline import (
    WorkerProcess,
    profile_message,
    publish,
    read_topic,
    record_message,
    still_pending,
    subscription_message,
    wait_for,
)
from tests.support.records import course_recipients, learning_record, profile

pytestmark = pytest.mark.kafka

# The worker's clock: inside reporting period 2026-27, then just after it closed.
IN_PERIOD = "2026-11-20T12:00:00+00:00"
NEXT_PERIOD = "2027-04-01T12:00:00+00:00"
DONE = "2026-10-05T14:00:00+00:00"

SUBSCRIPTIONS = [
    course_recipients("c1", ["CMaRS"]),
    course_recipients("c2", ["tahsn"]),
    course_recipients("c3", []),
    course_recipients("c4", ["cmars"], required=["501"]),
    course_recipients("c5", ["CMaRS", "tahsn"]),
]
PROFILES = [
    profile("u1", "CA-ON-CPSO-12345"),
    profile("u2", "College of Physicians and Surgeons of Ontario | 23456"),
    profile("u3", "CA-ON-COPO-34567"),  # a known college CMaRS does not take (WS400)
    profile("u4", "CA-ON-CMO-0042", deleted=True),
    profile("u6", "CPSO-XYZ"),  # invalid, corrected in phase 2
    profile("u7", ""),
    profile("u8", "Hogwarts | 1"),
    profile("u9", "CA-ON-RCDSO-777"),
    profile("u10", "CA-ON-CPSO-999"),
]

R = {
    "eligible": learning_record("u1", "c1", DONE),
    "alias": learning_record("u2", "c2", DONE),
    "both_names": learning_record("u1", "c5", DONE),
    "no_recipient": learning_record("u1", "c3", DONE),
    "legacy": learning_record("u1", "c1", DONE, source="legacy"),
    "incomplete": learning_record("u1", "c1", "2026-10-06T10:00:00Z", state="incomplete"),
    "failed": learning_record("u1", "c1", "2026-10-07T10:00:00Z", state="complete_fail"),
    "voided": learning_record("u1", "c2", DONE, voided=True),
    "expired": learning_record("u2", "c1", "2026-10-08T10:00:00Z", expires="2026-10-01T00:00:00Z"),
    "previous_period": learning_record("u1", "c1", "2026-03-30T12:00:00Z"),
    "college_not_enabled": learning_record("u3", "c1", DONE),
    "user_deleted": learning_record("u4", "c1", DONE),
    "profile_later": learning_record("u5", "c1", DONE),
    "oci_corrected": learning_record("u6", "c1", DONE),
    "no_oci_id": learning_record("u7", "c1", DONE),
    "invalid_oci_id": learning_record("u8", "c1", DONE),
    "activity_later": learning_record("u9", "c4", DONE),
    "activity_never": learning_record("u10", "c4", DONE),
}
ACTIVITY = learning_record(
    "u9", "c4", "2026-10-09T09:00:00Z", source="activity_completion", cmid="501"
)

ROUTED_FIRST = {"eligible", "alias", "both_names"}
REJECTED = {
    "no_recipient": "no_recipient",
    "legacy": "source_not_sent",
    "incomplete": "not_complete",
    "failed": "failed",
    "voided": "voided",
    "expired": "expired",
    "previous_period": "outside_period",
    "college_not_enabled": "college_not_enabled",
    "user_deleted": "user_deleted",
}
HELD = {
    "profile_later",
    "oci_corrected",
    "no_oci_id",
    "invalid_oci_id",
    "activity_later",
    "activity_never",
}
RELEASED = {"profile_later", "oci_corrected", "activity_later"}
CLOSED = {
    "no_oci_id": "no_oci_id",
    "invalid_oci_id": "invalid_oci_id",
    "activity_never": "required_activity_missing",
}


def ids(names: set[str] | dict[str, str]) -> set[str]:
    return {R[name]["record_id"] for name in names}


async def outcomes(settings) -> tuple[Counter, Counter, set[str]]:
    """(routed record ids, (record id, reason) rejections, pending record ids), with counts."""
    routed = Counter(
        m.value["record_id"] for m in await read_topic(settings, outbox_topic("cmars"))
    )
    rejected = Counter(
        (m.value["record_id"], m.value["reason"]) for m in await read_topic(settings, INELIGIBLE)
    )
    pending = set(still_pending(await read_topic(settings, PENDING)))
    return routed, rejected, pending


async def test_scenario(fresh_broker, tmp_path: Path) -> None:
    settings = fresh_broker()
    await apply_catalogue(settings)
    await publish(
        settings,
        [subscription_message(s) for s in SUBSCRIPTIONS]
        + [profile_message(p) for p in PROFILES]
        + [record_message(r) for r in R.values()]
        + [record_message(R["eligible"])],  # a duplicate: republished
    )
    worker = WorkerProcess(
        settings,
        tmp_path / "worker-1.log",
        LRX_PIPELINE_CLOCK=IN_PERIOD,
        LRX_PENDING_SWEEP_INTERVAL="0.5",
    ).start()
    try:
        want_routed = ids(ROUTED_FIRST)
        want_rejected = {(R[n]["record_id"], reason) for n, reason in REJECTED.items()}

        async def phase_one_done() -> bool:
            routed, rejected, pending = await outcomes(settings)
            return (
                set(routed) >= want_routed
                and set(rejected) >= want_rejected
                and (pending >= ids(HELD))
            )

        await wait_for(phase_one_done, 90, "phase 1 outcomes")
        routed, rejected, pending = await outcomes(settings)
        assert routed == Counter(want_routed), worker.log_tail()
        assert rejected == Counter(want_rejected)
        assert pending == ids(HELD)

        await publish(
            settings,
            [
                profile_message(profile("u5", "CPSO #55555")),
                profile_message(profile("u6", "CA-ON-CPSO-66666")),
                record_message(ACTIVITY),
            ],
        )
        want_routed |= ids(RELEASED) | {ACTIVITY["record_id"]}

        async def phase_two_done() -> bool:
            routed, _, pending = await outcomes(settings)
            return set(routed) >= want_routed and pending == ids(HELD - RELEASED)

        await wait_for(phase_two_done, 60, "held records released")
        routed, rejected, pending = await outcomes(settings)
        assert routed == Counter(want_routed)
        assert rejected == Counter(want_rejected)
        assert pending == ids(HELD - RELEASED)
    finally:
        worker.stop()

    outbox = {m.value["record_id"]: m for m in await read_topic(settings, outbox_topic("cmars"))}
    released = outbox[R["profile_later"]["record_id"]].value
    assert released["oci_id"]["canonical"] == "CA-ON-CPSO-55555"
    assert released["period"] == "2026-27"
    assert outbox[R["alias"]["record_id"]].value["oci_id"]["canonical"] == "CA-ON-CPSO-23456"
    assert outbox[R["alias"]["record_id"]].value["record"] == R["alias"] | {
        "published_at": outbox[R["alias"]["record_id"]].value["record"]["published_at"]
    }

    # The next period: the worker restarts (its tables from their changelogs, its
    # decisions from its outputs) and closes what is still held, with the reason.
    worker = WorkerProcess(
        settings,
        tmp_path / "worker-2.log",
        LRX_PIPELINE_CLOCK=NEXT_PERIOD,
        LRX_PENDING_SWEEP_INTERVAL="0.5",
    ).start()
    try:
        want_rejected |= {(R[n]["record_id"], reason) for n, reason in CLOSED.items()}

        async def period_closed() -> bool:
            _, rejected, pending = await outcomes(settings)
            return set(rejected) >= want_rejected and not pending

        await wait_for(period_closed, 90, "held records closed with the period")
        routed, rejected, pending = await outcomes(settings)
        assert routed == Counter(want_routed), "a restart must not route anything again"
        assert rejected == Counter(want_rejected)
        assert pending == set()
    finally:
        worker.stop()
    assert await read_topic(settings, PIPELINE_DEAD_LETTERS) == []
