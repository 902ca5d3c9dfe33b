"""Schema evolution: current contracts read every committed version; breaking changes fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from deploy.cli import main
from schemas.codec import AVRO_DIR, HISTORY_DIR, Codec, load_contracts, load_history
from schemas.compatibility import check_compatibility, resolution_problems, unrecorded_versions


def test_committed_history_is_compatible_and_current() -> None:
    contracts, history = load_contracts(), load_history()
    assert set(history) == set(contracts)
    assert check_compatibility(contracts, history) == []
    assert unrecorded_versions(contracts, history) == {}


def run_lrx(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_lrx_schemas_check_passes_on_the_repository() -> None:
    result = run_lrx("schemas", "check")
    assert result.exit_code == 0, result.output
    assert "ok: 7 schemas compatible" in result.output


@pytest.fixture
def contract_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of schemas/avro and schemas/history to change freely."""
    avro_dir, history_dir = tmp_path / "avro", tmp_path / "history"
    shutil.copytree(AVRO_DIR, avro_dir)
    shutil.copytree(HISTORY_DIR, history_dir)
    return avro_dir, history_dir


def edit_contract(avro_dir: Path, name: str, change: Any) -> None:
    path = avro_dir / f"{name}.avsc"
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema))


def field(schema: dict, name: str) -> dict:
    return next(f for f in schema["fields"] if f["name"] == name)


def test_a_new_field_without_default_fails_and_is_named(contract_copy: tuple[Path, Path]) -> None:
    avro_dir, history_dir = contract_copy
    edit_contract(
        avro_dir,
        "UserProfile",
        lambda s: s["fields"].append({"name": "department", "type": "string", "doc": "d"}),
    )
    result = run_lrx(
        "schemas", "check", "--avro-dir", str(avro_dir), "--history-dir", str(history_dir)
    )
    assert result.exit_code == 1
    assert (
        "INCOMPATIBLE UserProfile v1, field department: is not in the writer schema "
        "and has no default" in result.output
    )


def test_a_changed_type_in_a_shared_record_fails_everywhere_it_is_used(
    contract_copy: tuple[Path, Path],
) -> None:
    avro_dir, history_dir = contract_copy
    edit_contract(avro_dir, "CourseRef", lambda s: field(s, "id").update(type="int"))
    result = run_lrx(
        "schemas", "check", "--avro-dir", str(avro_dir), "--history-dir", str(history_dir)
    )
    assert result.exit_code == 1
    assert "LearningRecord v1, field course.id: type changed from string to int" in result.output
    assert "RoutedRecord v1, field record.course.id: type changed" in result.output
    assert "IneligibleRecord v1, field record.course.id" in result.output


def test_a_removed_enum_symbol_fails(contract_copy: tuple[Path, Path]) -> None:
    avro_dir, history_dir = contract_copy
    edit_contract(avro_dir, "Source", lambda s: s["symbols"].remove("legacy"))
    problems = check_compatibility(load_contracts(avro_dir), load_history(history_dir))
    assert "LearningRecord v1, field source: enum Source lost symbol(s) legacy" in {
        str(p).split(" and ")[0] for p in problems
    }


def test_a_compatible_change_must_be_recorded_then_old_bytes_still_decode(
    contract_copy: tuple[Path, Path],
) -> None:
    avro_dir, history_dir = contract_copy
    old_codec = Codec(load_contracts(avro_dir), load_history(history_dir))
    profile = {
        "site": "sunnybrook",
        "user_id": "7",
        "username": "jdoe",
        "firstname": "Jane",
        "lastname": "Doe",
        "email": None,
        "oci_id": "CA-ON-CPSO-012345",
        "suspended": False,
        "deleted": False,
        "modified_at": 1_780_000_000_000,
    }
    old_bytes = old_codec.encode("UserProfile", profile)
    edit_contract(
        avro_dir,
        "UserProfile",
        lambda s: s["fields"].append(
            {"name": "department", "type": ["null", "string"], "default": None, "doc": "d"}
        ),
    )
    dirs = ["--avro-dir", str(avro_dir), "--history-dir", str(history_dir)]

    unrecorded = run_lrx("schemas", "check", *dirs)
    assert unrecorded.exit_code == 1
    assert "UNRECORDED UserProfile" in unrecorded.output
    assert "INCOMPATIBLE" not in unrecorded.output

    dry = run_lrx("schemas", "record", "--dry-run", *dirs)
    assert "would write" in dry.output and not (history_dir / "UserProfile" / "v2.avsc").exists()
    run_lrx("schemas", "record", *dirs)
    assert (history_dir / "UserProfile" / "v2.avsc").exists()
    assert run_lrx("schemas", "check", *dirs).exit_code == 0

    new_codec = Codec(load_contracts(avro_dir), load_history(history_dir))
    decoded = new_codec.decode("UserProfile", old_bytes)
    assert decoded["department"] is None and decoded["oci_id"] == "CA-ON-CPSO-012345"


def test_record_refuses_an_incompatible_change(contract_copy: tuple[Path, Path]) -> None:
    avro_dir, history_dir = contract_copy
    edit_contract(avro_dir, "DeadLetter", lambda s: field(s, "attempts").update(type="string"))
    result = CliRunner().invoke(
        main, ["schemas", "record", "--avro-dir", str(avro_dir), "--history-dir", str(history_dir)]
    )
    assert result.exit_code == 1
    assert "DeadLetter v1, field attempts: type changed from int to string" in result.output
    assert not (history_dir / "DeadLetter" / "v2.avsc").exists()


@pytest.mark.parametrize(
    ("writer", "reader", "problem"),
    [
        ("int", "long", None),
        ("long", "double", None),
        ("string", "bytes", None),
        ("long", "int", "type changed from long to int"),
        ("string", ["null", "string"], None),
        (["null", "string"], "string", "writer union branch null"),
        (["null", "long"], ["null", "long", "string"], None),
        ({"type": "array", "items": "int"}, {"type": "array", "items": "long"}, None),
        ({"type": "array", "items": "long"}, {"type": "array", "items": "int"}, "[]"),
        (
            {"type": "long", "logicalType": "timestamp-millis"},
            {"type": "long", "logicalType": "timestamp-micros"},
            "logical type changed",
        ),
        (
            {"type": "enum", "name": "E", "symbols": ["a", "b"]},
            {"type": "enum", "name": "E", "symbols": ["a"], "default": "a"},
            None,
        ),
        (
            {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]},
            {"type": "record", "name": "S", "fields": [{"name": "a", "type": "int"}]},
            "renamed to S without an alias",
        ),
        (
            {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]},
            {
                "type": "record",
                "name": "S",
                "aliases": ["R"],
                "fields": [{"name": "b", "aliases": ["a"], "type": "int"}],
            },
            None,
        ),
    ],
)
def test_resolution_rules(writer: Any, reader: Any, problem: str | None) -> None:
    found = resolution_problems(writer, reader)
    if problem is None:
        assert found == []
    else:
        assert any(problem in f"{path} {text}" for path, text in found), found
