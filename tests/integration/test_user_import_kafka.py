"""`lrx users import` on a real broker: the exact report, and only the good rows published."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from click.testing import CliRunner

from deploy.cli import users
from deploy.settings import Settings
from deploy.topic_provisioning import apply_catalogue
from deploy.wiring import kafka_connection
from schemas.codec import Codec
from schemas.topics import USER_PROFILES, user_key

pytestmark = pytest.mark.kafka

CODEC = Codec.default()
SEEDED_AT = datetime(2026, 1, 1, tzinfo=UTC)

KNOWN_USERS = [
    # (site, user id, username, OCI ID field, deleted)
    ("north", "1", "alice", None, False),
    ("north", "2", "bob", None, False),
    ("north", "3", "carol", None, False),
    ("north", "4", "dave", None, True),
    ("north", "5", "erin", "CA-ON-CPSO-55555", False),
    ("north", "6", "gina", None, False),
    ("north", "7", "hank", None, False),
    ("north", "8", "ivan", None, False),
    ("north", "9", "jill", None, False),
    ("north", "10", "kate", None, False),
    ("north", "11", "liam", None, False),
    # The same practitioner at another hospital: the same OCI ID is allowed there.
    ("south", "1", "alice", "CA-ON-CPSO-11111", False),
]

UPLOAD = (
    "username,email,firstname,lastname,idnumber,profile_field_ociid,department\r\n"
    "alice,alice@north.example,Alice,Adams,A1,CA-ON-CPSO-11111,ER\r\n"
    'BOB,,,,,"College of Physicians and Surgeons of Ontario | 00123",ICU\r\n'
    "carol,,,,,CA-ON-XYZ-1,\r\n"
    "zed,,,,,CA-ON-CMO-2222,\r\n"
    ",,,,,CA-ON-CMO-3333,\r\n"
    "gina,,,,,,\r\n"
    "hank,,,,,CA-ON-RCDSO-777,\r\n"
    "ivan,,,,,ca-on-rcdso-777,\r\n"
    "dave,,,,,CA-ON-CMO-4444,\r\n"
    "jill,,,,,CPSO 55555,\r\n"
    "kate,,,,,CA-ON-COPO-321,\r\n"
    "liam,,,,,CA-ON-CPSO-12AB,\r\n"
)

KNOWN_COLLEGES = "CA-ON-CMO, CA-ON-COPO (not enabled), CA-ON-CPSO, CA-ON-RCDSO"
EXPECTED_REPORT = [
    "line 4: profile_field_ociid='CA-ON-XYZ-1': unknown_college: unknown college "
    f"'CA-ON-XYZ'; known: {KNOWN_COLLEGES}",
    "line 5: username='zed': no user of site north has this username in lms.user-profiles; "
    "the LMS must publish the user before its OCI ID can be imported",
    "line 6: username='': missing: rows match users by it",
    "line 7: profile_field_ociid='': missing: the OCI ID to import",
    "line 8: profile_field_ociid='CA-ON-RCDSO-777': duplicate OCI ID CA-ON-RCDSO-777 in this "
    "file: also on line 9",
    "line 9: profile_field_ociid='ca-on-rcdso-777': duplicate OCI ID CA-ON-RCDSO-777 in this "
    "file: also on line 8",
    "line 10: username='dave': user 4 of site north is deleted in the LMS",
    "line 11: profile_field_ociid='CPSO 55555': duplicate OCI ID CA-ON-CPSO-55555: user 'erin' "
    "(user id 5) of site north already holds it",
    "line 13: profile_field_ociid='CA-ON-CPSO-12AB': malformed_licence: licence number '12AB' "
    "mixes digits with other characters",
]


def known_profile(site: str, user_id: str, username: str, oci_id: str | None, deleted: bool):
    return {
        "site": site, "user_id": user_id, "username": username,
        "firstname": username.title(), "lastname": None, "email": f"{username}@{site}.example",
        "oci_id": oci_id, "suspended": False, "deleted": deleted, "modified_at": SEEDED_AT,
    }  # fmt: skip


async def seed_profiles(settings: Settings) -> None:
    await apply_catalogue(settings)
    producer = AIOKafkaProducer(acks="all", **kafka_connection(settings).client_options())
    await producer.start()
    try:
        for user in KNOWN_USERS:
            value = CODEC.encode("UserProfile", known_profile(*user))
            await producer.send_and_wait(USER_PROFILES, value, key=user_key(*user[:2]))
    finally:
        await producer.stop()


async def all_profiles(settings: Settings) -> list[tuple[bytes, dict[str, Any]]]:
    """Every message of lms.user-profiles, decoded, in partition and offset order."""
    consumer = AIOKafkaConsumer(
        auto_offset_reset="earliest", **kafka_connection(settings).client_options()
    )
    await consumer.start()
    try:
        tps = [TopicPartition(USER_PROFILES, p) for p in range(settings.topic_partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        found = []
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                for batch in (await consumer.getmany(tp, timeout_ms=5000)).values():
                    found += [(m.key, CODEC.decode("UserProfile", m.value)) for m in batch]
        return found
    finally:
        await consumer.stop()


def run_import(settings: Settings, path: Path, *args: str):
    return CliRunner().invoke(
        users.command, ["import", str(path), "--site", "north", *args], obj=settings
    )


def test_import_reports_every_bad_row_and_publishes_exactly_the_good_ones(fresh_broker, tmp_path):
    settings = fresh_broker()
    asyncio.run(seed_profiles(settings))
    upload = tmp_path / "users.csv"
    upload.write_bytes(b"\xef\xbb\xbf" + UPLOAD.encode())  # as Excel saves it: BOM, CRLF

    dry = run_import(settings, upload, "--dry-run")
    assert dry.exit_code == 1, dry.output
    lines = dry.stdout.splitlines()
    assert lines[0] == "11 known users of site north in lms.user-profiles"
    assert lines[1:-1] == EXPECTED_REPORT
    assert lines[-1] == (
        "12 rows: 3 good, 9 bad (9 problems); would publish 3 profiles to lms.user-profiles"
    )
    assert len(asyncio.run(all_profiles(settings))) == len(KNOWN_USERS)

    report = tmp_path / "report.csv"
    real = run_import(settings, upload, "--report", str(report))
    assert real.exit_code == 1, real.output
    assert real.stdout.splitlines()[1:-1] == EXPECTED_REPORT
    assert real.stdout.splitlines()[-1].endswith("published 3 profiles to lms.user-profiles")
    with report.open(newline="") as written:
        rows = list(csv.reader(written))
    assert rows[0] == ["line", "column", "value", "reason"]
    assert len(rows) == 1 + len(EXPECTED_REPORT)
    assert rows[1] == [
        "4", "profile_field_ociid", "CA-ON-XYZ-1",
        f"unknown_college: unknown college 'CA-ON-XYZ'; known: {KNOWN_COLLEGES}",
    ]  # fmt: skip

    messages = asyncio.run(all_profiles(settings))
    assert len(messages) == len(KNOWN_USERS) + 3
    published = [(key, p) for key, p in messages if p["modified_at"] != SEEDED_AT]
    assert sorted(
        (key, p["user_id"], p["username"], p["email"], p["deleted"], p["oci_id"])
        for key, p in published
    ) == [
        (b"north/1", "1", "alice", "alice@north.example", False, "CA-ON-CPSO-11111"),
        (b"north/10", "10", "kate", "kate@north.example", False, "CA-ON-COPO-321"),
        (b"north/2", "2", "bob", "bob@north.example", False, "CA-ON-CPSO-00123"),
    ]


def test_a_file_without_the_required_columns_is_refused_before_kafka(tmp_path):
    # Unreachable bootstrap: the file must be refused before any connection is tried.
    settings = Settings.from_env({}).replace(kafka_bootstrap="127.0.0.1:1")
    upload = tmp_path / "users.csv"
    upload.write_text("username,email\nalice,a@x\n")
    result = run_import(settings, upload)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: users.csv: line 1: the header lacks the required column(s) "
        "profile_field_ociid; found: username, email\n"
    )


def test_moodle_s_user_download_creates_profiles_on_a_site_that_never_published(
    fresh_broker, tmp_path
):
    settings = fresh_broker()
    asyncio.run(apply_catalogue(settings))
    download = tmp_path / "user-download.csv"
    download.write_text(
        "id,username,email,firstname,lastname,profile_field_ociid\n"
        "55,drsmith,smith@north.example,Ann,Smith,CPSO #24680\n"
        "56,drjones,jones@north.example,Bo,Jones,College of Physicians and Surgeons of "
        "Ontario | 13579\n"
    )
    result = run_import(settings, download)
    assert result.exit_code == 0, result.output
    written = {key: value for key, value in asyncio.run(all_profiles(settings))}
    assert set(written) == {user_key("north", "55"), user_key("north", "56")}
    smith = written[user_key("north", "55")]
    assert (smith["username"], smith["firstname"], smith["oci_id"]) == (
        "drsmith",
        "Ann",
        "CA-ON-CPSO-24680",
    )
    assert written[user_key("north", "56")]["oci_id"] == "CA-ON-CPSO-13579"
