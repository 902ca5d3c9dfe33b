"""Reporting periods: the annual windows a physician's reappointment looks at.

A period starts at local midnight of a configured month and day in a configured
IANA time zone (default April 1, America/Toronto: the fiscal year) and ends where
the next one starts, so periods tile time with no gap and no overlap. Intervals
are half-open, [start, end): 2027-04-01T00:00 Toronto belongs to 2027-28, and
the millisecond before it to 2026-27. Boundaries are computed in the zone with
zoneinfo, so daylight-saving changes between two boundaries do not shift them.

Labels: a period that starts in 2026 is "2026-27"; one that starts on January 1
lies within one calendar year and is labelled "2026".
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.errors import LrxError

__all__ = [
    "ReportingCalendar",
    "ReportingPeriod",
    "ReportingPeriodError",
    "FISCAL_YEAR",
    "period_of",
]

_START = re.compile(r"^(?P<month>\d{1,2})-(?P<day>\d{1,2})$")
_LABEL = re.compile(r"^(?P<year>\d{4})(?:-(?P<next>\d{2}))?$")


class ReportingPeriodError(LrxError, ValueError):
    """A period start, time zone, label or instant that cannot be used; the message quotes it."""


@dataclass(frozen=True, order=True)
class ReportingPeriod:
    """One period: `start` inclusive, `end` exclusive, both timezone-aware UTC datetimes."""

    label: str
    start: datetime
    end: datetime

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= _utc(instant) < self.end


@dataclass(frozen=True)
class ReportingCalendar:
    """Where periods start: a month and day, at local midnight in `timezone`."""

    month: int = 4
    day: int = 1
    timezone: str = "America/Toronto"
    # Periods found lately: nearly every instant the pipeline asks about falls in one of them.
    _recent: list[ReportingPeriod] = field(
        default_factory=list, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        try:
            date(2001, self.month, self.day)  # 2001: not a leap year
        except ValueError:
            raise ReportingPeriodError(
                f"reporting period start {self.month:02d}-{self.day:02d} is not a day "
                "that every year has (MM-DD; February 29 is not allowed)"
            ) from None
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ReportingPeriodError(
                f"reporting period time zone {self.timezone!r} is not an IANA zone "
                "(e.g. America/Toronto)"
            ) from None

    @classmethod
    def parse(cls, start: str, timezone: str) -> ReportingCalendar:
        """From setting values: `start` is "MM-DD" (e.g. "04-01"), `timezone` an IANA name."""
        match = _START.match(start.strip())
        if match is None:
            raise ReportingPeriodError(f"reporting period start {start!r} is not MM-DD")
        return cls(int(match["month"]), int(match["day"]), timezone.strip())

    def period_of(self, instant: datetime) -> ReportingPeriod:
        """The one period that contains `instant` (timezone-aware)."""
        instant = _utc(instant)
        for period in self._recent:
            if period.start <= instant < period.end:
                return period
        found = self._period_containing(instant)
        self._recent.insert(0, found)
        del self._recent[4:]
        return found

    def _period_containing(self, instant: datetime) -> ReportingPeriod:
        local = instant.astimezone(ZoneInfo(self.timezone))
        year = local.year if (local.month, local.day) >= (self.month, self.day) else local.year - 1
        # The local date decides in all but contrived zones; the UTC comparison makes it exact.
        while instant < self._start_of(year):
            year -= 1
        while instant >= self._start_of(year + 1):
            year += 1
        return self.period_starting_in(year)

    def period_starting_in(self, year: int) -> ReportingPeriod:
        """The period whose first day falls in calendar year `year`."""
        if self.month == 1 and self.day == 1:
            label = f"{year:04d}"
        else:
            label = f"{year:04d}-{(year + 1) % 100:02d}"
        return ReportingPeriod(label, self._start_of(year), self._start_of(year + 1))

    def period_labelled(self, label: str) -> ReportingPeriod:
        """The period with this label ("2026-27", or "2026" for calendar years)."""
        match = _LABEL.match(label.strip())
        if match is None:
            raise ReportingPeriodError(f"period label {label!r} is not YYYY-YY or YYYY")
        period = self.period_starting_in(int(match["year"]))
        if period.label != label.strip():
            raise ReportingPeriodError(
                f"period label {label!r} does not exist in this calendar; "
                f"the period starting in {match['year']} is {period.label!r}"
            )
        return period

    def _start_of(self, year: int) -> datetime:
        return _local_midnight_in_utc(year, self.month, self.day, self.timezone)


FISCAL_YEAR = ReportingCalendar()


def period_of(instant: datetime, calendar: ReportingCalendar = FISCAL_YEAR) -> ReportingPeriod:
    """The period of `calendar` (default: April 1, America/Toronto) that contains `instant`."""
    return calendar.period_of(instant)


@functools.lru_cache(maxsize=256)
def _local_midnight_in_utc(year: int, month: int, day: int, timezone: str) -> datetime:
    # A midnight skipped by a DST jump (a few zones jump at 00:00) resolves, as PEP 495
    # defines for fold=0, to the instant after the gap; every boundary uses this one rule.
    local = datetime.combine(date(year, month, day), time(), ZoneInfo(timezone))
    return local.astimezone(UTC)


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ReportingPeriodError(f"instant {instant.isoformat()} has no time zone")
    return instant.astimezone(UTC)
