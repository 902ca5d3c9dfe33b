"""The retry policy of the sink: capped exponential backoff with full jitter, and Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["RetryPolicy", "parse_retry_after"]

# Full jitter can draw a wait near zero; this floor keeps a storm of failures
# from ever becoming a tight loop.
MIN_WAIT = 0.05


@dataclass(frozen=True)
class RetryPolicy:
    """Seconds, from LRX_SINK_RETRY_INITIAL, _CAP, _MAX_TIME (0: forever) and
    LRX_SINK_AUTH_RETRY_INTERVAL."""

    initial: float
    cap: float
    max_time: float
    auth_interval: float
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the `failures`-th consecutive failure (1 is the first)."""
        if retry_after is not None:
            # As told, plus a little spread so many clients do not return together.
            return max(MIN_WAIT, retry_after + self.rng.uniform(0, min(1.0, 0.1 * retry_after)))
        ceiling = min(self.cap, self.initial * 2 ** max(0, failures - 1))
        return max(MIN_WAIT, self.rng.uniform(0, ceiling))

    def gives_up(self, elapsed: float, next_wait: float) -> bool:
        """True when waiting `next_wait` more would pass the maximum retry time."""
        return self.max_time > 0 and elapsed + next_wait > self.max_time


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delay-seconds or an HTTP date. None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
