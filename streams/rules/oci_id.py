"""OCI IDs: parse the forms people type into the canonical `CA-ON-CPSO-12345`.

Accepted forms (any case; extra, missing or odd spacing; en/em dashes and the
minus sign count as hyphens; full-width characters are folded by NFKC):

- canonical: `CA-ON-CPSO-12345`, `ca - on - cpso - 12345`, `CA-ON-CPSO 12345`;
- display: `College of Physicians and Surgeons of Ontario | 12345` (the form the
  guide shows in a Moodle profile), with `&` for `and`;
- display without the bar: `College of Physicians and Surgeons of Ontario 12345`;
- the acronym alone when only one province uses it: `CPSO 12345`, `CPSO-12345`;
- before the licence number, an optional `#`, `No.` or `Number`: `CPSO #12345`.

Licence numbers are ASCII digits only, 1 to 10 of them (Ontario colleges issue
4 to 6 digits; 10 leaves room without accepting phone numbers), and not all
zeros (a placeholder, not a licence). They stay strings so that leading zeros
survive: `CA-ON-CMO-0042` keeps its `0042`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from schemas.errors import DataError
from streams.rules.colleges import College, CollegeRegistry

__all__ = [
    "OciId",
    "OciIdError",
    "OciIdErrorCode",
    "parse_oci_id",
    "canonical_oci_id",
    "display_form",
    "LICENCE_MAX_DIGITS",
]

LICENCE_MAX_DIGITS = 10

# Characters that people (and word processors) put where a hyphen or a bar belongs.
_DASHES = re.compile("[\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d]")
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_AROUND_HYPHEN = re.compile(r"\s*-\s*")
_AROUND_BAR = re.compile(r"\s*\|\s*")
_SEPARATOR = re.compile(r"\s*(?P<sep>[|:,-])?\s*")
_MARKER = re.compile(r"(?P<marker>(?:(?:no\.?|number)(?![^\W\d_])\s*)?(?:#\s*)?)", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")


class OciIdErrorCode(StrEnum):
    """Why a value is not a usable OCI ID."""

    EMPTY = "empty"
    UNKNOWN_COLLEGE = "unknown_college"
    COLLEGE_NOT_ENABLED = "college_not_enabled"  # known college, not supported by CMaRS: WS400
    MALFORMED_LICENCE = "malformed_licence"
    TRAILING_GARBAGE = "trailing_garbage"


class OciIdError(DataError):
    """A value that is not a usable OCI ID; `.code` says why, the message quotes the value."""

    def __init__(self, code: OciIdErrorCode, value: str | None, problem: str) -> None:
        self.code = code
        self.value = value
        super().__init__(f"OCI ID {value!r}: {problem}")


@dataclass(frozen=True)
class OciId:
    """A normalised OCI ID: `canonical` is always `college` + '-' + `licence`."""

    canonical: str
    college: str
    licence: str

    def __post_init__(self) -> None:
        if self.canonical != f"{self.college}-{self.licence}":
            raise ValueError(f"OciId {self.canonical!r} is not {self.college!r}-{self.licence!r}")

    @classmethod
    def of(cls, college: College | str, licence: str) -> OciId:
        code = college.code if isinstance(college, College) else college
        return cls(f"{code}-{licence}", code, licence)

    def as_record(self) -> dict[str, str]:
        """The Avro OciId record."""
        return {"canonical": self.canonical, "college": self.college, "licence": self.licence}


def parse_oci_id(
    value: str | None, colleges: CollegeRegistry, *, require_enabled: bool = True
) -> OciId:
    """Parse any accepted form (see the module docstring) into an OciId.

    Raises OciIdError. With `require_enabled` (the default) a known college that
    is not enabled for CMaRS raises code `college_not_enabled`; without it, such
    an ID parses, so callers can tell "valid but unsupported" from "invalid".
    """
    text = _tidy(value)
    if not text:
        raise OciIdError(OciIdErrorCode.EMPTY, value, "no value")
    match = _college_pattern(colleges).match(text)
    if match is None:
        raise _unknown_college(value, text, colleges)
    college = _college_of_match(match, colleges)
    rest = text[match.end() :]
    separator = _SEPARATOR.match(rest)
    assert separator is not None  # every part of the pattern is optional
    marker = _MARKER.match(rest, separator.end())
    assert marker is not None
    licence_text = rest[marker.end() :]
    named = match.lastgroup is not None and match.lastgroup.startswith("name")
    if named and not separator["sep"] and not marker["marker"] and licence_text[:1].isalpha():
        # The name runs on ("... of Ontario East 12345"): a college we do not know.
        raise _unknown_college(value, text, colleges)
    licence = _licence(value, licence_text)
    if require_enabled and not college.enabled:
        raise OciIdError(
            OciIdErrorCode.COLLEGE_NOT_ENABLED,
            value,
            f"college {college.code} ({college.name}) is not enabled for CMaRS "
            f"(CMaRS answers WS400); enabled: {', '.join(c.code for c in colleges.enabled())}",
        )
    return OciId.of(college, licence)


def canonical_oci_id(value: str | None, colleges: CollegeRegistry) -> str:
    """The canonical form of any accepted form; idempotent on canonical input."""
    return parse_oci_id(value, colleges).canonical


def display_form(oci_id: OciId, colleges: CollegeRegistry) -> str:
    """`College of Physicians and Surgeons of Ontario | 12345`: what a Moodle profile shows."""
    college = colleges.by_code(oci_id.college)
    if college is None:
        raise OciIdError(OciIdErrorCode.UNKNOWN_COLLEGE, oci_id.canonical, "unknown college")
    return f"{college.name} | {oci_id.licence}"


def _tidy(value: str | None) -> str:
    """Fold look-alike characters and spacing so that one pattern covers what people type."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFKC", value)
    text = _INVISIBLE.sub("", text)
    text = _DASHES.sub("-", text).replace("\u00a6", "|")
    text = " ".join(text.split())
    text = _AROUND_HYPHEN.sub("-", text)
    return _AROUND_BAR.sub(" | ", text)


def _licence(value: str | None, text: str) -> str:
    if not text:
        raise OciIdError(OciIdErrorCode.MALFORMED_LICENCE, value, "no licence number")
    digits = _DIGITS.match(text)
    token = text.split(" ", 1)[0]
    if digits is None:
        raise OciIdError(
            OciIdErrorCode.MALFORMED_LICENCE, value, f"licence number {token!r} is not digits"
        )
    after = text[digits.end() :]
    if after[:1].isalnum():
        raise OciIdError(
            OciIdErrorCode.MALFORMED_LICENCE,
            value,
            f"licence number {token!r} mixes digits with other characters",
        )
    licence = digits.group()
    if len(licence) > LICENCE_MAX_DIGITS:
        raise OciIdError(
            OciIdErrorCode.MALFORMED_LICENCE,
            value,
            f"licence number {licence!r} has {len(licence)} digits, more than {LICENCE_MAX_DIGITS}",
        )
    if not licence.strip("0"):
        raise OciIdError(
            OciIdErrorCode.MALFORMED_LICENCE, value, f"licence number {licence!r} is all zeros"
        )
    if after.strip():
        raise OciIdError(
            OciIdErrorCode.TRAILING_GARBAGE,
            value,
            f"unexpected {after.strip()!r} after licence number {licence!r}",
        )
    return licence


def _unknown_college(value: str | None, text: str, colleges: CollegeRegistry) -> OciIdError:
    named = re.split(r"[|#0-9]", text, maxsplit=1)[0].rstrip(" -:,")
    problem = f"unknown college {named!r}" if named else "no college named"
    return OciIdError(
        OciIdErrorCode.UNKNOWN_COLLEGE, value, f"{problem}; known: {colleges.describe_known()}"
    )


@functools.cache
def _college_pattern(colleges: CollegeRegistry) -> re.Pattern[str]:
    """One regex that matches any college's name, code or acronym at the start of a value.

    Longer alternatives come first, so that a full name wins over a prefix of it;
    the look-ahead stops `CMO` from matching the start of `CMOX`.
    """
    alternatives: list[tuple[int, str, str, int]] = []
    for index, college in enumerate(colleges):
        words = [r"(?:and|&)" if w == "and" else re.escape(w) for w in college.name.split()]
        alternatives.append((len(college.name), "name", r"\s*".join(words), index))
        alternatives.append((len(college.code), "code", re.escape(college.code), index))
        if colleges.by_acronym(college.acronym) is college:
            alternatives.append((len(college.acronym), "code", re.escape(college.acronym), index))
    alternatives.sort(key=lambda a: -a[0])
    body = "|".join(
        f"(?P<{kind}{n}_{index}>{regex})" for n, (_, kind, regex, index) in enumerate(alternatives)
    )
    return re.compile(rf"(?:{body})(?![^\W\d_])", re.IGNORECASE)


def _college_of_match(match: re.Match[str], colleges: CollegeRegistry) -> College:
    group = match.lastgroup
    assert group is not None
    index = int(group.rsplit("_", 1)[1])
    return list(colleges)[index]
