"""The college registry is configuration: four colleges shipped, COPO known but not enabled."""

from __future__ import annotations

import json

import pytest

from deploy.settings import Settings
from streams.rules.colleges import (
    DEFAULT_COLLEGES_FILE,
    College,
    CollegeRegistry,
    CollegeRegistryError,
)
from streams.rules.oci_id import parse_oci_id

CNO = {
    "code": "CA-ON-CNO",
    "name": "College of Nurses of Ontario",
    "country": "CA",
    "province": "ON",
    "enabled": True,
}


def test_the_shipped_registry_enables_the_three_colleges_cmars_supports():
    colleges = CollegeRegistry.load()
    assert {c.code: c.enabled for c in colleges} == {
        "CA-ON-CPSO": True,
        "CA-ON-CMO": True,
        "CA-ON-RCDSO": True,
        "CA-ON-COPO": False,
    }
    copo = colleges.by_code("ca-on-copo")
    assert copo == College(
        "CA-ON-COPO", "College of Optometrists of Ontario", "CA", "ON", enabled=False
    )
    assert copo.acronym == "COPO"


def test_the_default_setting_points_at_the_shipped_file():
    assert Settings.from_env({}).colleges_file == DEFAULT_COLLEGES_FILE


def test_lookups_ignore_case_and_spacing():
    colleges = CollegeRegistry.load()
    assert colleges.by_code(" ca-on-cmo ").name == "College of Midwives of Ontario"
    assert colleges.by_acronym("rcdso").code == "CA-ON-RCDSO"
    assert colleges.by_code("CA-ON-CNO") is None


def test_a_college_added_to_the_file_is_supported_without_code_changes(tmp_path):
    document = json.loads(DEFAULT_COLLEGES_FILE.read_text())
    document["colleges"].append(CNO)
    path = tmp_path / "colleges.json"
    path.write_text(json.dumps(document))
    colleges = CollegeRegistry.load(path)
    assert parse_oci_id("College of Nurses of Ontario | 0815", colleges).canonical == (
        "CA-ON-CNO-0815"
    )


def test_an_acronym_two_provinces_share_is_not_accepted_alone():
    colleges = CollegeRegistry(
        [
            College("CA-ON-CPS", "College of Physicians of Ontario", "CA", "ON", True),
            College("CA-QC-CPS", "College of Physicians of Quebec", "CA", "QC", True),
        ]
    )
    assert colleges.by_acronym("CPS") is None
    assert parse_oci_id("CA-QC-CPS-1", colleges).college == "CA-QC-CPS"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{oops", "is not JSON"),
        ("[]", "has no 'colleges' list"),
        ({"colleges": ["CPSO"]}, r"colleges\[0\] is not an object"),
        ({"colleges": [{**CNO, "name": ""}]}, r"colleges\[0\]: field 'name'"),
        ({"colleges": [{**CNO, "enabled": "yes"}]}, r"colleges\[0\]: field 'enabled'"),
        ({"colleges": [{**CNO, "code": "CNO"}]}, "'CNO' is not COUNTRY-PROVINCE-ACRONYM"),
        ({"colleges": [{**CNO, "province": "QC"}]}, "does not start with its country"),
        ({"colleges": [{**CNO, "name": "College 7"}]}, "without digits"),
        ({"colleges": [CNO, CNO]}, "'CA-ON-CNO' is listed twice"),
        (
            {
                "colleges": [
                    CNO,
                    {**CNO, "code": "CA-ON-CNX", "name": "college of NURSES of ontario"},
                ]
            },
            "listed twice",
        ),
    ],
)
def test_a_bad_registry_file_names_the_file_entry_and_field(tmp_path, document, message):
    path = tmp_path / "colleges.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(CollegeRegistryError, match=message) as caught:
        CollegeRegistry.load(path)
    assert str(path) in str(caught.value)


def test_a_missing_registry_file_is_named(tmp_path):
    with pytest.raises(CollegeRegistryError, match="cannot read college registry .*nowhere.json"):
        CollegeRegistry.load(tmp_path / "nowhere.json")


def test_two_names_differing_only_by_and_versus_ampersand_are_one_name_listed_twice():
    cpso = College("CA-ON-CPSO", "College of Physicians and Surgeons of Ontario", "CA", "ON", True)
    cps = College("CA-ON-CPS", "College of  Physicians & Surgeons of ONTARIO", "CA", "ON", True)
    with pytest.raises(CollegeRegistryError) as caught:
        CollegeRegistry([cpso, cps])
    assert str(caught.value) == (
        "college name 'College of  Physicians & Surgeons of ONTARIO' is listed twice"
    )


@pytest.mark.parametrize(
    "name",
    ["College 7 of Ontario", "College of Nurses | Ontario", "College of Nurses #Ontario", " "],
)
def test_a_college_name_may_not_hold_what_the_display_form_puts_after_it(name):
    with pytest.raises(CollegeRegistryError) as caught:
        CollegeRegistry([College("CA-ON-CNO", name, "CA", "ON", True)])
    assert str(caught.value) == (
        f"college CA-ON-CNO: name {name!r} must be non-empty, without digits, '|' or '#' "
        "(the display form puts the licence after it)"
    )


def test_any_other_letters_and_punctuation_make_a_college_name():
    name = "Collège des Technologues en Radiologie (X-Ray) & Imagerie de l'Ontario"
    colleges = CollegeRegistry([College("CA-ON-CXIT", name, "CA", "ON", True)])
    assert parse_oci_id(f"{name} | 12", colleges).canonical == "CA-ON-CXIT-12"
