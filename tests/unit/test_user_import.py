"""The upload-user CSV import's checks, without Kafka: file reading, each row, duplicates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.lms.profile_directory import ProfileDirectory
from connectors.lms.user_import import (
    ImportPlan,
    RowProblem,
    UploadFileError,
    UserImport,
    read_upload_file,
)
from streams.rules.colleges import CollegeRegistry

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
COLLEGES = CollegeRegistry.load()
HEADER = "username,email,firstname,lastname,idnumber,profile_field_ociid"


def profile(site: str, user_id: str, username: str, oci_id: str | None = None, **extra: Any):
    return {
        "site": site,
        "user_id": user_id,
        "username": username,
        "firstname": extra.get("firstname"),
        "lastname": None,
        "email": extra.get("email"),
        "oci_id": oci_id,
        "suspended": extra.get("suspended", False),
        "deleted": extra.get("deleted", False),
        "modified_at": datetime(2026, 1, 1, tzinfo=UTC),
    }


def plan_of(text: str, profiles: list[dict[str, Any]], site: str = "north") -> ImportPlan:
    table = read_upload_file(text.encode())
    user_import = UserImport(
        site, table.columns, ProfileDirectory(profiles, COLLEGES), COLLEGES, NOW
    )
    for row in table.rows:
        user_import.check(row)
    return user_import.plan()


def test_a_good_row_updates_only_the_oci_id_and_modified_at():
    known = profile("north", "7", "ann", None, firstname="Ann", email="ann@lms", suspended=True)
    plan = plan_of(f"{HEADER}\nANN,other@x,Other,Name,X9,CPSO #0042\n", [known])
    assert plan.problems == []
    assert plan.profiles == [{**known, "oci_id": "CA-ON-CPSO-0042", "modified_at": NOW}]


def test_bom_crlf_and_header_case_are_accepted():
    data = ("\ufeffUserName,Profile_Field_OciId\r\nann,CA-ON-CMO-12\r\n").encode()
    table = read_upload_file(data)
    assert table.columns == {"username": 0, "profile_field_ociid": 1}
    assert [(r.line, r.values) for r in table.rows] == [(2, ["ann", "CA-ON-CMO-12"])]


def test_missing_required_columns_are_named_at_once():
    with pytest.raises(UploadFileError) as error:
        read_upload_file(b"email,firstname\na@x,A\n")
    assert str(error.value) == (
        "line 1: the header lacks the required column(s) username, profile_field_ociid; "
        "found: email, firstname"
    )


def test_undecodable_bytes_name_their_line_and_the_way_out():
    data = f"{HEADER}\nann,,,,,CA-ON-CMO-1\nb\xe9a,,,,,CA-ON-CMO-2\n".encode("cp1252")
    with pytest.raises(UploadFileError) as error:
        read_upload_file(data)
    assert str(error.value).startswith("line 3: byte 0xe9 is not valid utf-8;")
    assert "--encoding" in str(error.value)
    assert read_upload_file(data, encoding="cp1252").rows[1].values[0] == "b\u00e9a"


def test_row_numbers_are_where_a_row_starts_and_blank_lines_count():
    text = f'{HEADER}\nann,"two\nlines",,,,CA-ON-CMO-1\n\nbob,,,,,CA-ON-CMO-2\n'
    assert [r.line for r in read_upload_file(text.encode()).rows] == [2, 5]


def test_a_row_with_more_fields_than_the_header_is_bad_and_not_read_further():
    plan = plan_of(f"{HEADER}\nann,,,,,CA-ON-CMO-1,extra\n", [profile("north", "1", "ann")])
    assert plan.problems == [
        RowProblem(2, "(row)", "extra", "has 7 fields, the header has 6 "
                   "(an unquoted delimiter in a value?)"),
    ]  # fmt: skip
    assert plan.profiles == []


def test_the_same_username_twice_is_bad_on_both_rows():
    plan = plan_of(
        f"{HEADER}\nann,,,,,CA-ON-CMO-1\nAnn,,,,,CA-ON-CMO-1\n", [profile("north", "1", "ann")]
    )
    assert plan.problems == [
        RowProblem(2, "username", "ann", "duplicate username: also on line 3"),
        RowProblem(3, "username", "Ann", "duplicate username: also on line 2"),
    ]


def test_users_may_swap_oci_ids_in_one_file():
    known = [
        profile("north", "1", "ann", "CA-ON-CMO-1"),
        profile("north", "2", "bob", "CA-ON-CMO-2"),
    ]
    plan = plan_of(f"{HEADER}\nann,,,,,CA-ON-CMO-2\nbob,,,,,CA-ON-CMO-1\n", known)
    assert plan.problems == []
    assert [(p["username"], p["oci_id"]) for p in plan.profiles] == [
        ("ann", "CA-ON-CMO-2"),
        ("bob", "CA-ON-CMO-1"),
    ]


def test_an_oci_id_is_free_only_if_its_holder_really_gives_it_up():
    # bob's row is bad (carol holds CMO-3), so bob keeps CMO-2 and ann cannot take it.
    known = [
        profile("north", "1", "ann", "CA-ON-CMO-1"),
        profile("north", "2", "bob", "CA-ON-CMO-2"),
        profile("north", "3", "carol", "CA-ON-CMO-3"),
    ]
    plan = plan_of(f"{HEADER}\nann,,,,,CA-ON-CMO-2\nbob,,,,,CA-ON-CMO-3\n", known)
    assert plan.problems == [
        RowProblem(2, "profile_field_ociid", "CA-ON-CMO-2", "duplicate OCI ID CA-ON-CMO-2: "
                   "user 'bob' (user id 2) of site north already holds it"),
        RowProblem(3, "profile_field_ociid", "CA-ON-CMO-3", "duplicate OCI ID CA-ON-CMO-3: "
                   "user 'carol' (user id 3) of site north already holds it"),
    ]  # fmt: skip
    assert plan.profiles == []


def test_deleted_users_and_other_sites_hold_no_oci_id_here():
    known = [
        profile("north", "1", "ann"),
        profile("north", "2", "old", "CA-ON-CMO-5", deleted=True),
        profile("south", "1", "ann", "CA-ON-CMO-6"),
        profile("south", "2", "zoe", "CA-ON-CMO-5"),
    ]
    plan = plan_of(f"{HEADER}\nann,,,,,CA-ON-CMO-5\n", known)
    assert plan.problems == []
    assert plan.profiles[0]["oci_id"] == "CA-ON-CMO-5"


DOWNLOAD = "id,username,email,firstname,lastname,profile_field_ociid"  # Moodle's user download


def test_moodle_s_user_download_creates_the_users_the_site_never_published():
    plan = plan_of(
        f"{DOWNLOAD}\n55,drsmith,smith@lms,Ann,Smith,CPSO #0042\n56,drjones,,,,\n", [], "north"
    )
    assert [str(p) for p in plan.problems] == [
        "line 3: profile_field_ociid='': missing: the OCI ID to import"
    ]
    assert plan.profiles == [
        {"site": "north", "user_id": "55", "username": "drsmith", "firstname": "Ann",
         "lastname": "Smith", "email": "smith@lms", "oci_id": "CA-ON-CPSO-0042",
         "suspended": False, "deleted": False, "modified_at": NOW},
    ]  # fmt: skip


def test_a_download_row_of_a_known_user_updates_it_and_a_different_id_is_refused():
    known = profile("north", "7", "ann", None, firstname="Ann")
    ok = plan_of(f"{DOWNLOAD}\n7,ann,,,,CPSO #0042\n", [known])
    assert ok.profiles == [{**known, "oci_id": "CA-ON-CPSO-0042", "modified_at": NOW}]
    wrong = plan_of(f"{DOWNLOAD}\n8,ann,,,,CPSO #0042\nx1,bob,,,,CPSO #0043\n", [known])
    assert [str(p) for p in wrong.problems] == [
        "line 2: id='8': username 'ann' is user 7 of site north in lms.user-profiles",
        "line 3: id='x1': not a Moodle user id",
    ]
    assert wrong.profiles == []


def test_new_users_of_a_download_may_not_share_an_oci_id_either():
    plan = plan_of(f"{DOWNLOAD}\n55,a,,,,CPSO #0042\n56,b,,,,CA-ON-CPSO-0042\n", [])
    assert plan.profiles == []
    assert {p.line for p in plan.problems} == {2, 3}
