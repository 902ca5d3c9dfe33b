"""OCI IDs: every accepted form normalises to the canonical one; every bad value says why."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from deploy.cli import main
from streams.rules.colleges import CollegeRegistry
from streams.rules.oci_id import (
    LICENCE_MAX_DIGITS,
    OciId,
    OciIdError,
    OciIdErrorCode,
    canonical_oci_id,
    display_form,
    parse_oci_id,
)

COLLEGES = CollegeRegistry.load()
CPSO = "College of Physicians and Surgeons of Ontario"


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        # canonical, in any case and spacing
        ("CA-ON-CPSO-12345", "CA-ON-CPSO-12345"),
        ("  ca-on-cpso-12345\n", "CA-ON-CPSO-12345"),
        ("Ca - On - Cpso - 12345", "CA-ON-CPSO-12345"),
        ("CA-ON-CPSO 12345", "CA-ON-CPSO-12345"),
        ("CA\u2013ON\u2013CPSO\u201412345", "CA-ON-CPSO-12345"),  # en and em dashes
        ("\uff23\uff21-ON-CPSO-\uff11\uff12\uff13", "CA-ON-CPSO-123"),  # full-width
        ("CA-ON-CPSO-\u200b12345", "CA-ON-CPSO-12345"),  # zero-width space from a paste
        ("CA-ON-CMO-0042", "CA-ON-CMO-0042"),  # leading zeros survive
        ("CA-ON-RCDSO-7", "CA-ON-RCDSO-7"),
        # display form, as the guide shows it
        (f"{CPSO} | 12345", "CA-ON-CPSO-12345"),
        (f"{CPSO}|12345", "CA-ON-CPSO-12345"),
        ("college of physicians and surgeons of ONTARIO  |  12345", "CA-ON-CPSO-12345"),
        ("College of Physicians & Surgeons of Ontario | 12345", "CA-ON-CPSO-12345"),
        ("College  of\u00a0Midwives of Ontario | 0042", "CA-ON-CMO-0042"),
        ("Royal College of Dental Surgeons of Ontario \u00a6 555", "CA-ON-RCDSO-555"),
        # display form with the number next to the name
        (f"{CPSO} 12345", "CA-ON-CPSO-12345"),
        (f"{CPSO} #12345", "CA-ON-CPSO-12345"),
        (f"{CPSO} - 12345", "CA-ON-CPSO-12345"),
        (f"{CPSO}: No. 12345", "CA-ON-CPSO-12345"),
        # the acronym alone
        ("CPSO 12345", "CA-ON-CPSO-12345"),
        ("cpso#12345", "CA-ON-CPSO-12345"),
        ("CMO-0042", "CA-ON-CMO-0042"),
        ("RCDSO number 99", "CA-ON-RCDSO-99"),
    ],
)
def test_accepted_forms_normalise_to_canonical(value, canonical):
    oci_id = parse_oci_id(value, COLLEGES)
    assert oci_id.canonical == canonical
    assert (oci_id.college, oci_id.licence) == tuple(canonical.rsplit("-", 1))


@pytest.mark.parametrize(
    ("value", "code", "quoted"),
    [
        ("", OciIdErrorCode.EMPTY, "''"),
        ("   \t", OciIdErrorCode.EMPTY, "'   \\t'"),
        (None, OciIdErrorCode.EMPTY, "None"),
        ("CA-ON-CNO-12345", OciIdErrorCode.UNKNOWN_COLLEGE, "'CA-ON-CNO'"),
        ("College of Nurses of Ontario | 12345", OciIdErrorCode.UNKNOWN_COLLEGE, "Nurses"),
        ("12345", OciIdErrorCode.UNKNOWN_COLLEGE, "'12345'"),
        ("CMOX-123", OciIdErrorCode.UNKNOWN_COLLEGE, "'CMOX'"),
        (f"{CPSO} East 12345", OciIdErrorCode.UNKNOWN_COLLEGE, "Ontario East"),
        ("CA-ON-COPO-12345", OciIdErrorCode.COLLEGE_NOT_ENABLED, "'CA-ON-COPO-12345'"),
        ("College of Optometrists of Ontario | 1", OciIdErrorCode.COLLEGE_NOT_ENABLED, "WS400"),
        ("CA-ON-CPSO-", OciIdErrorCode.MALFORMED_LICENCE, "no licence number"),
        (f"{CPSO} |", OciIdErrorCode.MALFORMED_LICENCE, "no licence number"),
        ("CA-ON-CPSO-ABC", OciIdErrorCode.MALFORMED_LICENCE, "'ABC' is not digits"),
        ("CA-ON-CPSO-12a45", OciIdErrorCode.MALFORMED_LICENCE, "'12a45'"),
        ("CA-ON-CPSO-\u0661\u0662\u0663", OciIdErrorCode.MALFORMED_LICENCE, "not digits"),
        ("CA-ON-CPSO-" + "1" * (LICENCE_MAX_DIGITS + 1), OciIdErrorCode.MALFORMED_LICENCE, "11"),
        ("CA-ON-CPSO-0000", OciIdErrorCode.MALFORMED_LICENCE, "all zeros"),
        ("CA-ON-CPSO-12345 extra", OciIdErrorCode.TRAILING_GARBAGE, "'extra'"),
        ("CA-ON-CPSO-12345-6", OciIdErrorCode.TRAILING_GARBAGE, "'-6'"),
        (f"{CPSO} | 12345 (CPSO)", OciIdErrorCode.TRAILING_GARBAGE, "'(CPSO)'"),
        ("CA-ON-CPSO-12345.", OciIdErrorCode.TRAILING_GARBAGE, "'.'"),
    ],
)
def test_bad_values_raise_their_code_and_quote_the_value(value, code, quoted):
    with pytest.raises(OciIdError) as caught:
        parse_oci_id(value, COLLEGES)
    assert caught.value.code is code
    assert caught.value.value == value
    message = str(caught.value)
    assert message.startswith(f"OCI ID {value!r}: ")
    assert quoted in message


KNOWN = "CA-ON-CMO, CA-ON-COPO (not enabled), CA-ON-CPSO, CA-ON-RCDSO"


@pytest.mark.parametrize(
    ("value", "code", "problem"),
    [
        ("", OciIdErrorCode.EMPTY, "no value"),
        ("12345", OciIdErrorCode.UNKNOWN_COLLEGE, f"no college named; known: {KNOWN}"),
        ("| 12345", OciIdErrorCode.UNKNOWN_COLLEGE, f"no college named; known: {KNOWN}"),
        # A name that runs on by a single letter is still not a college we know.
        (
            f"{CPSO} E 12345", OciIdErrorCode.UNKNOWN_COLLEGE,
            f"unknown college '{CPSO} E'; known: {KNOWN}",
        ),
        (
            "CA-ON-COPO-12345", OciIdErrorCode.COLLEGE_NOT_ENABLED,
            "college CA-ON-COPO (College of Optometrists of Ontario) is not enabled for CMaRS "
            "(CMaRS answers WS400); enabled: CA-ON-CPSO, CA-ON-CMO, CA-ON-RCDSO",
        ),
        ("CA-ON-CPSO-", OciIdErrorCode.MALFORMED_LICENCE, "no licence number"),
        # After a code (not a name), letters are a licence that is not digits.
        ("CPSO ABC", OciIdErrorCode.MALFORMED_LICENCE, "licence number 'ABC' is not digits"),
        # The licence quoted is the first word after the college, not the whole rest.
        (
            "CA-ON-CPSO-TBD by Friday", OciIdErrorCode.MALFORMED_LICENCE,
            "licence number 'TBD' is not digits",
        ),
        (
            "CPSO 12345A (inactive)", OciIdErrorCode.MALFORMED_LICENCE,
            "licence number '12345A' mixes digits with other characters",
        ),
        (
            "CA-ON-CPSO-12345678901", OciIdErrorCode.MALFORMED_LICENCE,
            "licence number '12345678901' has 11 digits, more than 10",
        ),
        ("CA-ON-CPSO-000", OciIdErrorCode.MALFORMED_LICENCE, "licence number '000' is all zeros"),
        (
            "CA-ON-CPSO-12345 extra", OciIdErrorCode.TRAILING_GARBAGE,
            "unexpected 'extra' after licence number '12345'",
        ),
    ],
)  # fmt: skip
def test_bad_values_say_exactly_what_is_wrong(value, code, problem):
    with pytest.raises(OciIdError) as caught:
        parse_oci_id(value, COLLEGES)
    assert caught.value.code is code
    assert str(caught.value) == f"OCI ID {value!r}: {problem}"


def test_the_display_form_of_a_college_not_in_the_registry_is_refused():
    oci_id = OciId("CA-ON-CNO-1", "CA-ON-CNO", "1")
    with pytest.raises(OciIdError) as caught:
        display_form(oci_id, COLLEGES)
    assert (caught.value.code, caught.value.value) == (
        OciIdErrorCode.UNKNOWN_COLLEGE,
        "CA-ON-CNO-1",
    )
    assert str(caught.value) == "OCI ID 'CA-ON-CNO-1': unknown college"


def test_unknown_college_lists_the_known_ones():
    with pytest.raises(OciIdError, match="known: CA-ON-CMO, CA-ON-COPO \\(not enabled\\)"):
        parse_oci_id("XX-YY-ZZZ-1", COLLEGES)


def test_a_known_but_disabled_college_parses_when_enablement_is_not_required():
    oci_id = parse_oci_id("CA-ON-COPO-012", COLLEGES, require_enabled=False)
    assert oci_id == OciId("CA-ON-COPO-012", "CA-ON-COPO", "012")
    assert display_form(oci_id, COLLEGES) == "College of Optometrists of Ontario | 012"


def test_the_structure_is_checked_before_enablement():
    with pytest.raises(OciIdError) as caught:
        parse_oci_id("CA-ON-COPO-12x", COLLEGES)
    assert caught.value.code is OciIdErrorCode.MALFORMED_LICENCE


def test_display_form_is_what_the_guide_shows():
    oci_id = parse_oci_id("CA-ON-CPSO-12345", COLLEGES)
    assert display_form(oci_id, COLLEGES) == f"{CPSO} | 12345"
    assert oci_id.as_record() == {
        "canonical": "CA-ON-CPSO-12345",
        "college": "CA-ON-CPSO",
        "licence": "12345",
    }


def test_an_inconsistent_oci_id_cannot_be_built():
    with pytest.raises(ValueError, match="CA-ON-CPSO-1"):
        OciId("CA-ON-CPSO-1", "CA-ON-CPSO", "2")


# --- properties ---------------------------------------------------------------------------

licences = st.from_regex(rf"[0-9]{{1,{LICENCE_MAX_DIGITS}}}", fullmatch=True).filter(
    lambda licence: licence.strip("0") != ""
)
enabled_colleges = st.sampled_from(COLLEGES.enabled())
spaces = st.sampled_from(["", " ", "  ", "\t", "\u00a0"])
gaps = st.sampled_from([" ", "  ", "\u00a0", " \t"])
dashes = st.sampled_from(["-", "\u2013", "\u2014", "\u2212"])


@st.composite
def random_case(draw, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c.lower() for c, flip in zip(text, flips, strict=True))


@st.composite
def messy_oci_ids(draw) -> tuple[str, str]:
    """A value as a person might type it, and the canonical form it must give."""
    college = draw(enabled_colleges)
    licence = draw(licences)
    form = draw(st.sampled_from(["canonical", "display", "display_no_bar", "acronym"]))
    if form == "canonical":
        parts = [*college.code.split("-"), licence]
        text = parts[0]
        for part in parts[1:]:
            text += draw(spaces) + draw(dashes) + draw(spaces) + part
    else:
        if form == "acronym":
            name = college.acronym
        else:
            words = [draw(st.sampled_from(["and", "&"])) if w == "and" else w
                     for w in college.name.split()]  # fmt: skip
            name = words[0] + "".join(draw(gaps) + w for w in words[1:])
        separator = {"display": " | ", "display_no_bar": " ", "acronym": draw(dashes)}[form]
        marker = draw(st.sampled_from(["", "#", "# ", "No. "]))
        text = name + separator + marker + licence
    text = draw(spaces) + draw(random_case(text)) + draw(spaces)
    return text, f"{college.code}-{licence}"


@given(messy_oci_ids())
@example(("ca-on-cpso-12345", "CA-ON-CPSO-12345"))
def test_messy_input_gives_the_canonical_form(case):
    value, canonical = case
    assert canonical_oci_id(value, COLLEGES) == canonical


@given(st.one_of(messy_oci_ids().map(lambda case: case[0]), st.text(max_size=60)))
def test_normalising_is_idempotent_and_anything_else_is_an_oci_id_error(value):
    try:
        canonical = canonical_oci_id(value, COLLEGES)
    except OciIdError as error:
        assert error.code in OciIdErrorCode
        return
    assert canonical_oci_id(canonical, COLLEGES) == canonical


@given(st.sampled_from(list(COLLEGES)), licences)
def test_display_and_canonical_forms_round_trip(college, licence):
    oci_id = OciId.of(college, licence)
    display = display_form(oci_id, COLLEGES)
    assert parse_oci_id(display, COLLEGES, require_enabled=False) == oci_id
    assert parse_oci_id(oci_id.canonical, COLLEGES, require_enabled=False) == oci_id
    assert display_form(parse_oci_id(display, COLLEGES, require_enabled=False), COLLEGES) == display


# --- lrx oci-id check ---------------------------------------------------------------------


def test_check_command_prints_canonical_forms_and_succeeds_when_all_are_good():
    result = CliRunner().invoke(main, ["oci-id", "check", "cpso #12345", f"{CPSO} | 007"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "'cpso #12345': CA-ON-CPSO-12345",
        f"'{CPSO} | 007': CA-ON-CPSO-007",
    ]


def test_check_command_prints_json_lines_and_fails_when_one_is_bad():
    result = CliRunner().invoke(main, ["oci-id", "check", "--json", "CA-ON-CMO-1", "CA-ON-COPO-1"])
    assert result.exit_code == 1
    good, bad = (json.loads(line) for line in result.output.splitlines())
    assert good == {
        "value": "CA-ON-CMO-1",
        "ok": True,
        "canonical": "CA-ON-CMO-1",
        "college": "CA-ON-CMO",
        "licence": "1",
        "display": "College of Midwives of Ontario | 1",
    }
    assert bad["ok"] is False
    assert bad["code"] == "college_not_enabled"
    assert "'CA-ON-COPO-1'" in bad["message"]


def test_check_command_reports_a_broken_registry_file(tmp_path, monkeypatch):
    broken = tmp_path / "colleges.json"
    broken.write_text("{not json")
    monkeypatch.setenv("LRX_COLLEGES_FILE", str(broken))
    result = CliRunner().invoke(main, ["oci-id", "check", "CA-ON-CPSO-1"])
    assert result.exit_code == 1
    assert "is not JSON" in result.output
