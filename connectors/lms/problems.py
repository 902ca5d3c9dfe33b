"""Problems found in LMS input, each with the path of the value that is wrong.

Paths look like `[3].relateduserid` or `actor.account.name`, so an LMS admin can
find the exact item of a batch. Mapping code collects every problem of a batch
before giving up, because fixing one error at a time over HTTP is miserable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.errors import DataError
from schemas.topics import key_part_problem

__all__ = ["Problem", "InvalidInput", "FieldReader", "at", "is_unicode_text", "LONE_SURROGATE"]


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def as_json(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class InvalidInput(DataError):
    """One or more problems in a body, line or batch item."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def at(prefix: str, path: str) -> str:
    """Join path parts: at("[3]", "other.completionstate") -> "[3].other.completionstate"."""
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


_MISSING = object()


class FieldReader:
    """Reads typed fields from one JSON object, collecting a Problem for each bad one."""

    def __init__(self, data: object, path: str = "", problems: list[Problem] | None = None):
        self.path = path
        # Nested readers share their parent's list, so one batch collects every problem.
        self.problems: list[Problem] = [] if problems is None else problems
        if isinstance(data, dict):
            self.data = data
        else:
            self.data = {}
            self.problems.append(Problem(path, f"must be an object, not {_kind(data)}"))

    def problem(self, field: str, message: str) -> None:
        self.problems.append(Problem(at(self.path, field), message))

    def _get(self, field: str, required: bool) -> object:
        value = self.data.get(field, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.problem(field, "missing")
            return _MISSING
        return value

    def text(self, field: str, required: bool = True, max_length: int = 255) -> str | None:
        """A non-empty string; Moodle ids that arrive as JSON numbers are accepted as text."""
        value = self._get(field, required)
        if value is _MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.problem(field, f"must be a string, not {_kind(value)}")
            return None
        text = str(value).strip()
        if not text:
            if required:
                self.problem(field, "must not be empty")
            return None
        if not is_unicode_text(text):
            # JSON can escape half a surrogate pair (\ud800); neither UTF-8 nor Avro can hold it.
            self.problem(field, LONE_SURROGATE)
            return None
        if len(text) > max_length:
            self.problem(field, f"longer than {max_length} characters")
            return None
        return text

    def identifier(self, field: str, required: bool = True) -> str | None:
        """A site, user or course id: text that can be part of a Kafka key."""
        text = self.text(field, required)
        problem = key_part_problem(text) if text else None
        if problem:
            self.problem(field, problem)
            return None
        return text

    def integer(self, field: str, required: bool = True) -> int | None:
        value = self._get(field, required)
        if value is _MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            # isascii: str.isdigit() is also true of "²", which int() refuses.
            if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
                return int(value)
            self.problem(field, f"must be an integer, not {_kind(value)}")
            return None
        return value

    def boolean(self, field: str, default: bool = False) -> bool:
        value = self._get(field, False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.problem(field, f"must be true or false, not {_kind(value)}")
            return default
        return value

    def mapping(self, field: str, required: bool = True) -> FieldReader | None:
        value = self._get(field, required)
        if value is _MISSING:
            return None
        if not isinstance(value, dict):
            self.problem(field, f"must be an object, not {_kind(value)}")
            return None
        return FieldReader(value, at(self.path, field), self.problems)

    def epoch_seconds(self, field: str, required: bool = True) -> datetime | None:
        """A Unix time in seconds, as Moodle stores times."""
        seconds = self.integer(field, required)
        if seconds is None:
            return None
        if not 0 < seconds < 32503680000:  # 3000-01-01
            self.problem(field, f"{seconds} is not a plausible Unix time in seconds")
            return None
        return datetime.fromtimestamp(seconds, UTC)

    def iso_instant(self, field: str, required: bool = True) -> datetime | None:
        """An ISO 8601 date-time with a time zone, as xAPI and our JSON write times."""
        text = self.text(field, required, max_length=64)
        if text is None:
            return None
        try:
            instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.problem(field, f"{text!r} is not an ISO 8601 date-time")
            return None
        if instant.tzinfo is None:
            self.problem(field, f"{text!r} has no time zone (add Z or an offset)")
            return None
        try:
            return instant.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is in year 0 in UTC
            self.problem(field, f"{text!r} is outside the years 1 to 9999 in UTC")
            return None

    def choice(self, field: str, choices: Iterable[str], required: bool = True) -> str | None:
        text = self.text(field, required)
        allowed = list(choices)
        if text is not None and text not in allowed:
            self.problem(field, f"{text!r} is not one of {', '.join(allowed)}")
            return None
        return text

    def raise_problems(self) -> None:
        if self.problems:
            raise InvalidInput(self.problems)


LONE_SURROGATE = "holds a lone surrogate (such as \\ud800), which is not Unicode text"


def is_unicode_text(text: str) -> bool:
    """False for text with half a surrogate pair, which JSON can carry and UTF-8 cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )
