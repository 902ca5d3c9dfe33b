"""The college registry: which colleges an OCI ID can name, and which CMaRS accepts.

The registry is configuration, not code ("Other Colleges can be supported upon
request"): a JSON file, by default `streams/rules/colleges.json`, overridable with
LRX_COLLEGES_FILE. Each college has a code (`CA-ON-CPSO`: country, province,
acronym), a full name (the display form of an OCI ID uses it), and whether it is
enabled for CMaRS.

The decision about COPO: the integration guide lists the College of Optometrists
of Ontario (CA-ON-COPO) in its CSV upload table, but its WS400 answer says CMaRS
supports only CPSO, CMO and RCDSO. We therefore ship COPO as a *known* college
that is *not enabled*: its OCI IDs parse, and its members' records are ineligible
with reason `college_not_enabled` (what CMaRS would answer with WS400) instead of
being sent and rejected. Enabling it is a one-word change in the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.errors import LrxError

__all__ = ["College", "CollegeRegistry", "CollegeRegistryError", "DEFAULT_COLLEGES_FILE"]

DEFAULT_COLLEGES_FILE = Path(__file__).with_name("colleges.json")

_CODE = re.compile(r"^(?P<country>[A-Z]{2})-(?P<province>[A-Z]{2})-(?P<acronym>[A-Z]{2,12})$")


class CollegeRegistryError(LrxError, ValueError):
    """The registry file cannot be used; the message names the file, entry and field."""


@dataclass(frozen=True)
class College:
    """One college. `code` is the canonical prefix of its members' OCI IDs."""

    code: str
    name: str
    country: str
    province: str
    enabled: bool

    @property
    def acronym(self) -> str:
        return self.code.rsplit("-", 1)[1]


class CollegeRegistry:
    """An immutable set of colleges, looked up by code, acronym or full name, ignoring case."""

    def __init__(self, colleges: Iterable[College]) -> None:
        self._colleges = tuple(colleges)
        self._by_code: dict[str, College] = {}
        names: set[str] = set()
        for college in self._colleges:
            _check_college(college)
            if college.code in self._by_code:
                raise CollegeRegistryError(f"college code {college.code!r} is listed twice")
            key = name_key(college.name)
            if key in names:
                raise CollegeRegistryError(f"college name {college.name!r} is listed twice")
            self._by_code[college.code] = college
            names.add(key)

    @classmethod
    def load(cls, path: Path | str = DEFAULT_COLLEGES_FILE) -> CollegeRegistry:
        """Read a registry file: {"colleges": [{code, name, country, province, enabled}]}."""
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise CollegeRegistryError(f"cannot read college registry {path}: {error}") from None
        except json.JSONDecodeError as error:
            raise CollegeRegistryError(f"college registry {path} is not JSON: {error}") from None
        entries = document.get("colleges") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise CollegeRegistryError(f"college registry {path} has no 'colleges' list")
        colleges = [
            _college_from_entry(entry, f"{path} colleges[{i}]") for i, entry in enumerate(entries)
        ]
        try:
            return cls(colleges)
        except CollegeRegistryError as error:
            raise CollegeRegistryError(f"college registry {path}: {error}") from None

    def __iter__(self) -> Iterator[College]:
        return iter(self._colleges)

    def __len__(self) -> int:
        return len(self._colleges)

    def by_code(self, code: str) -> College | None:
        return self._by_code.get(code.strip().upper())

    def by_acronym(self, acronym: str) -> College | None:
        """The college with this acronym, or None if none or several provinces share it."""
        found = [c for c in self._colleges if c.acronym == acronym.strip().upper()]
        return found[0] if len(found) == 1 else None

    def enabled(self) -> tuple[College, ...]:
        return tuple(c for c in self._colleges if c.enabled)

    def describe_known(self) -> str:
        """'CA-ON-CMO, CA-ON-COPO (not enabled), ...' for error messages."""
        return ", ".join(
            c.code if c.enabled else f"{c.code} (not enabled)"
            for c in sorted(self._colleges, key=lambda c: c.code)
        )


def name_key(name: str) -> str:
    """A college name reduced for comparison: case, spacing and '&' versus 'and' ignored."""
    return " ".join(name.replace("&", " and ").casefold().split())


def _check_college(college: College) -> None:
    match = _CODE.match(college.code)
    if match is None:
        raise CollegeRegistryError(
            f"college code {college.code!r} is not COUNTRY-PROVINCE-ACRONYM (e.g. CA-ON-CPSO)"
        )
    if (match["country"], match["province"]) != (college.country, college.province):
        raise CollegeRegistryError(
            f"college code {college.code!r} does not start with its country "
            f"{college.country!r} and province {college.province!r}"
        )
    if not college.name.strip() or any(ch.isdigit() or ch in "|#" for ch in college.name):
        raise CollegeRegistryError(
            f"college {college.code}: name {college.name!r} must be non-empty, "
            "without digits, '|' or '#' (the display form puts the licence after it)"
        )


def _college_from_entry(entry: Any, where: str) -> College:
    if not isinstance(entry, dict):
        raise CollegeRegistryError(f"{where} is not an object")
    values: dict[str, Any] = {}
    for name, kind in (("code", str), ("name", str), ("country", str), ("province", str)):
        value = entry.get(name)
        if not isinstance(value, kind) or not value.strip():
            raise CollegeRegistryError(f"{where}: field {name!r} must be a non-empty string")
        values[name] = value.strip() if name == "name" else value.strip().upper()
    enabled = entry.get("enabled")
    if not isinstance(enabled, bool):
        raise CollegeRegistryError(f"{where}: field 'enabled' must be true or false")
    return College(enabled=enabled, **values)
