"""When the sink sends: continuously, or in windows given by a cron expression in a time zone.

In a window the sink drains the outbox up to the end offsets it read when the
window opened; records that arrive later wait in Kafka for the next window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from schemas.errors import LrxError

__all__ = ["Clock", "SystemClock", "Schedule", "ScheduleError"]

CONTINUOUS = "continuous"


class ScheduleError(LrxError, ValueError):
    """The schedule or time zone setting cannot be used; the message says which and why."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class Schedule:
    expression: str
    timezone: ZoneInfo

    @classmethod
    def parse(cls, expression: str, timezone: str) -> Schedule:
        expression = expression.strip()
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(
                f"LRX_SINK_TIMEZONE={timezone!r} is not a known time zone"
            ) from None
        if expression != CONTINUOUS and not croniter.is_valid(expression):
            raise ScheduleError(
                f"LRX_SINK_SCHEDULE={expression!r} is neither 'continuous' nor a cron "
                "expression such as '0 2 * * *'"
            )
        return cls(expression, zone)

    @property
    def continuous(self) -> bool:
        return self.expression == CONTINUOUS

    def next_window(self, after: datetime) -> datetime:
        """The first window strictly after `after`, as an aware datetime in UTC."""
        if self.continuous:
            return after
        local = after.astimezone(self.timezone)
        return croniter(self.expression, local).get_next(datetime).astimezone(UTC)

    def describe(self) -> str:
        if self.continuous:
            return "continuous"
        return f"cron '{self.expression}' in {self.timezone.key}"
