"""Moodle's upload-user CSV (or user download): read it, check every row, build the profiles.

- **It sets the OCI ID of users the LMS already published.** Moodle's upload file
  has no internal user id, and a Moodle user id is unique only within its site,
  so rows are matched like Moodle's own upload does: by username (in lower
  case) within the site given with `--site`, against the profiles in
  lms.user-profiles. A username that site has not published is a bad row: the
  import cannot invent a user id, so the LMS must publish the user first
  (POST /v1/users, or its own sync); then the row can be imported again.
- **Moodle's user download creates the users it names.** Its CSV (Site
  administration → Users → Bulk user actions → Download) has an `id` column,
  the Moodle user id. A row with an id whose username the site has not
  published becomes a new profile (username, names and email from the row), so
  a site that sends completions with logstore_xapi and never publishes users can
  still give them OCI IDs. A row whose id differs from the id of the known user
  of that username is bad: the file and the LMS disagree on who that is.
- **Only the OCI ID changes.** The updated profile keeps every other field of
  the known one (the LMS owns names, email, suspension); `oci_id` becomes the
  canonical form and `modified_at` the time of the import. The columns `email`,
  `firstname`, `lastname` and `idnumber` are recognised and otherwise ignored,
  as are columns this import does not know. A college that CMaRS does not
  accept (CA-ON-COPO) is still a valid OCI ID: the pipeline, not the import,
  marks its records `college_not_enabled`.
- **An OCI ID belongs to one user per site.** The OCI ID is the one identity
  that crosses sites, so the same OCI ID on users of two sites is allowed: it
  is the same practitioner at two hospitals. The same OCI ID on two usernames
  of one site is a duplicate: within the file both rows are bad; against the
  known users the row is bad unless the other user gives that OCI ID up in the
  same file (a swap of two IDs is fine). Deleted users hold no OCI ID.
- **Every problem is reported; nothing bad is published.** A row is bad if any
  check fails, and the report lists each problem with its line number (header
  = line 1), column, value and reason. Good rows are published even when others
  are bad, so fixing the bad rows and importing the file again is safe:
  republishing a good row writes the same profile again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.errors import DataError
from streams.rules.colleges import CollegeRegistry
from streams.rules.oci_id import OciIdError, parse_oci_id

from .profile_directory import ProfileDirectory, username_key

__all__ = [
    "USERNAME",
    "OCI_ID",
    "REQUIRED_COLUMNS",
    "RECOGNISED_COLUMNS",
    "UploadFileError",
    "UploadTable",
    "UploadRow",
    "RowProblem",
    "ImportPlan",
    "UserImport",
    "read_upload_file",
]

USERNAME = "username"
OCI_ID = "profile_field_ociid"
REQUIRED_COLUMNS = (USERNAME, OCI_ID)
RECOGNISED_COLUMNS = ("id", USERNAME, "email", "firstname", "lastname", "idnumber", OCI_ID)
USER_ID = "id"  # in Moodle's user download, not in its upload file
ROW = "(row)"  # the column named by a problem of the whole row


class UploadFileError(DataError):
    """The file as a whole cannot be imported; the message names the line or columns."""


@dataclass(frozen=True)
class UploadRow:
    """One data row: its line number in the file and its values, by column index."""

    line: int
    values: list[str]


@dataclass(frozen=True)
class UploadTable:
    """The header's column positions and the data rows of an upload file."""

    columns: dict[str, int]
    rows: list[UploadRow]


@dataclass(frozen=True, order=True)
class RowProblem:
    """One thing wrong with one row."""

    line: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}={self.value!r}: {self.reason}"


@dataclass
class ImportPlan:
    """The outcome of checking a file: profiles to publish and every problem found."""

    site: str
    rows: int
    profiles: list[dict[str, Any]]
    problems: list[RowProblem]

    @property
    def bad_rows(self) -> int:
        return len({p.line for p in self.problems})


def read_upload_file(data: bytes, encoding: str = "utf-8", delimiter: str = ",") -> UploadTable:
    """Parse an upload file's bytes: BOM and CRLF are fine, undecodable bytes name their line.

    Raises UploadFileError for a missing header, a column named twice, or a
    required column missing.
    """
    text = _decode(data, encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise UploadFileError("the file is empty: expected a header line naming the columns")
        columns: dict[str, int] = {}
        for index, name in enumerate(header):
            column = name.strip().lower()
            if column in columns:
                raise UploadFileError(f"line 1: column {column!r} appears twice in the header")
            columns[column] = index
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise UploadFileError(
                f"line 1: the header lacks the required column(s) {', '.join(missing)}; "
                f"found: {', '.join(columns) or '(none)'}"
            )
        rows = []
        start = reader.line_num + 1
        for values in reader:
            # A quoted value may span lines; a row's number is the line where it starts.
            if values:
                rows.append(UploadRow(start, values))
            start = reader.line_num + 1
    except csv.Error as error:
        raise UploadFileError(f"line {reader.line_num}: not valid CSV: {error}") from None
    return UploadTable(columns, rows)


def _decode(data: bytes, encoding: str) -> str:
    if encoding.replace("-", "").lower() in ("utf8", "utf8sig"):
        encoding = "utf-8-sig"  # Excel writes a BOM before UTF-8 CSV
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = data[error.start : error.start + 1].hex()
        raise UploadFileError(
            f"line {line}: byte 0x{byte} is not valid {error.encoding}; save the file as "
            "UTF-8, or name its encoding with --encoding (e.g. cp1252 for Excel on Windows)"
        ) from None
    except LookupError:
        raise UploadFileError(f"unknown encoding {encoding!r}") from None


@dataclass
class _Candidate:
    """A row whose fields line up with the header, and the problems found in it so far."""

    row: UploadRow
    username: str
    oci_raw: str
    canonical: str
    profile: Mapping[str, Any] | None  # None when the username matched no usable user
    problems: list[RowProblem] = field(default_factory=list)


class UserImport:
    """Checks rows one at a time (`check`), then across rows (`plan`).

    Split in two so that a caller can show progress over the rows.
    """

    def __init__(
        self,
        site: str,
        columns: Mapping[str, int],
        directory: ProfileDirectory,
        colleges: CollegeRegistry,
        now: datetime,
    ) -> None:
        self.site = site
        self.directory = directory
        self.colleges = colleges
        self.now = now
        self.width = len(columns)
        self.username_at = columns[USERNAME]
        self.oci_at = columns[OCI_ID]
        self.columns = columns
        self.rows = 0
        self.problems: list[RowProblem] = []
        self.candidates: list[_Candidate] = []

    def check(self, row: UploadRow) -> None:
        """The checks one row needs no other row for: field count, username, OCI ID."""
        self.rows += 1
        problems: list[RowProblem] = []
        if len(row.values) > self.width:
            # Values have shifted columns: checking them would only mislead.
            self.problems.append(
                RowProblem(
                    row.line,
                    ROW,
                    row.values[self.width],
                    f"has {len(row.values)} fields, the header has {self.width} "
                    "(an unquoted delimiter in a value?)",
                )
            )
            return
        username = _value(row, self.username_at).strip()
        oci_raw = _value(row, self.oci_at)
        profile = self._matched_user(row, username, problems)
        canonical = self._canonical(row, oci_raw, problems)
        candidate = _Candidate(row, username, oci_raw, canonical or "", profile, problems)
        if canonical is not None or username:
            self.candidates.append(candidate)
        else:
            self.problems.extend(problems)

    def plan(self) -> ImportPlan:
        """Cross-row checks (duplicates in the file and against known users), then the plan."""
        self._find_duplicate_usernames()
        self._find_duplicate_oci_ids()
        self._find_oci_ids_held_by_others()
        profiles = []
        for candidate in self.candidates:
            self.problems.extend(candidate.problems)
            if not candidate.problems and candidate.profile is not None:
                profiles.append(
                    {**candidate.profile, "oci_id": candidate.canonical, "modified_at": self.now}
                )
        self.problems.sort()
        return ImportPlan(self.site, self.rows, profiles, self.problems)

    def _matched_user(
        self, row: UploadRow, username: str, problems: list[RowProblem]
    ) -> Mapping[str, Any] | None:
        if not username:
            problems.append(RowProblem(row.line, USERNAME, "", "missing: rows match users by it"))
            return None
        users = self.directory.users_named(self.site, username)
        live = [u for u in users if not u["deleted"]]
        user_id = _value(row, self.columns[USER_ID]).strip() if USER_ID in self.columns else ""
        if user_id and not (user_id.isascii() and user_id.isdigit()):
            problems.append(RowProblem(row.line, USER_ID, user_id, "not a Moodle user id"))
            return None
        if len(live) == 1:
            if user_id and live[0]["user_id"] != user_id:
                problems.append(RowProblem(row.line, USER_ID, user_id,
                    f"username {username!r} is user {live[0]['user_id']} of site {self.site} "
                    "in lms.user-profiles"))  # fmt: skip
                return None
            return live[0]
        if not users and user_id:
            return self._new_profile(row, user_id, username)
        if len(live) > 1:
            ids = ", ".join(sorted(u["user_id"] for u in live))
            reason = f"matches {len(live)} users of site {self.site} (user ids {ids})"
        elif users:
            reason = f"user {users[0]['user_id']} of site {self.site} is deleted in the LMS"
        else:
            reason = (
                f"no user of site {self.site} has this username in lms.user-profiles; "
                "the LMS must publish the user before its OCI ID can be imported"
            )
        problems.append(RowProblem(row.line, USERNAME, username, reason))
        return None

    def _new_profile(self, row: UploadRow, user_id: str, username: str) -> dict[str, Any]:
        """The profile a download row describes, for a user the LMS never published."""

        def column(name: str) -> str | None:
            at = self.columns.get(name)
            return (_value(row, at).strip() or None) if at is not None else None

        return {
            "site": self.site,
            "user_id": user_id,
            "username": username,
            "firstname": column("firstname"),
            "lastname": column("lastname"),
            "email": column("email"),
            "oci_id": None,
            "suspended": False,
            "deleted": False,
            "modified_at": self.now,
        }

    def _canonical(self, row: UploadRow, raw: str, problems: list[RowProblem]) -> str | None:
        if not raw.strip():
            problems.append(RowProblem(row.line, OCI_ID, raw, "missing: the OCI ID to import"))
            return None
        try:
            return parse_oci_id(raw, self.colleges, require_enabled=False).canonical
        except OciIdError as error:
            problem = str(error).removeprefix(f"OCI ID {raw!r}: ")
            problems.append(RowProblem(row.line, OCI_ID, raw, f"{error.code}: {problem}"))
            return None

    def _find_duplicate_usernames(self) -> None:
        groups = _groups((username_key(c.username), c) for c in self.candidates if c.username)
        for group in groups:
            for candidate in group:
                others = _other_lines(candidate, group)
                candidate.problems.append(
                    RowProblem(
                        candidate.row.line,
                        USERNAME,
                        candidate.username,
                        f"duplicate username: also on line {others}",
                    )
                )

    def _find_duplicate_oci_ids(self) -> None:
        with_id = (c for c in self.candidates if c.canonical)
        for group in _groups((c.canonical, c) for c in with_id):
            if len({username_key(c.username) for c in group}) < 2:
                continue  # one user twice: the duplicate username says it
            for candidate in group:
                candidate.problems.append(
                    RowProblem(
                        candidate.row.line,
                        OCI_ID,
                        candidate.oci_raw,
                        f"duplicate OCI ID {candidate.canonical} in this file: "
                        f"also on line {_other_lines(candidate, group)}",
                    )
                )

    def _find_oci_ids_held_by_others(self) -> None:
        """A row may take an OCI ID from a known user only if that user's row gives it up.

        Whether a user gives their ID up depends on their own row being good, which
        this same check can change, so it repeats until nothing changes.
        """
        changed = True
        while changed:
            changed = False
            moving = {
                c.profile["user_id"]
                for c in self.candidates
                if not c.problems and c.profile is not None
            }
            for candidate in self.candidates:
                if candidate.problems or candidate.profile is None:
                    continue
                holders = [
                    h
                    for h in self.directory.holders_of(self.site, candidate.canonical)
                    if h["user_id"] != candidate.profile["user_id"] and h["user_id"] not in moving
                ]
                if holders:
                    holder = holders[0]
                    candidate.problems.append(
                        RowProblem(
                            candidate.row.line,
                            OCI_ID,
                            candidate.oci_raw,
                            f"duplicate OCI ID {candidate.canonical}: user "
                            f"{holder['username']!r} (user id {holder['user_id']}) of site "
                            f"{self.site} already holds it",
                        )
                    )
                    changed = True


def _value(row: UploadRow, index: int) -> str:
    # A short row lacks its trailing values: they read as empty, like Moodle reads them.
    return row.values[index] if index < len(row.values) else ""


def _groups(pairs: Iterable[tuple[str, _Candidate]]) -> list[list[_Candidate]]:
    """The groups of two or more candidates that share a key."""
    by_key: dict[str, list[_Candidate]] = {}
    for key, candidate in pairs:
        by_key.setdefault(key, []).append(candidate)
    return [group for group in by_key.values() if len(group) > 1]


def _other_lines(candidate: _Candidate, group: list[_Candidate]) -> str:
    return ", ".join(str(c.row.line) for c in group if c is not candidate)
