"""The sink's retry policy: capped exponential backoff with full jitter, Retry-After, the retry
budget, and reading Retry-After from a response. No clock but the ones given."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from connectors.cmars.retry import MIN_WAIT, RetryPolicy, parse_retry_after
from deploy.settings import Settings

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def retry_policy(**changes: Any) -> RetryPolicy:
    defaults = Settings()
    policy = RetryPolicy(
        initial=defaults.sink_retry_initial,
        cap=defaults.sink_retry_cap,
        max_time=defaults.sink_retry_max_time,
        auth_interval=defaults.sink_auth_retry_interval,
    )
    return dataclasses.replace(policy, **changes)


class Ceiling(random.Random):
    """Jitter drawn at its ceiling, so every wait is exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


# --- backoff


def test_backoff_grows_with_full_jitter_under_the_cap() -> None:
    policy = retry_policy(initial=0.5, cap=8.0, rng=random.Random(7))
    for failures in range(1, 12):
        ceiling = min(8.0, 0.5 * 2 ** (failures - 1))
        waits = [policy.backoff(failures) for _ in range(200)]
        assert all(MIN_WAIT <= w <= max(MIN_WAIT, ceiling) for w in waits)
        # Full jitter spreads waits over the whole range, not near the ceiling only.
        assert min(waits) < ceiling / 4 + MIN_WAIT and max(waits) > ceiling * 3 / 4


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        (3.0, 3.3),  # a tenth more
        (10.0, 11.0),
        (15.0, 16.0),  # but never more than a second more
        (120.0, 121.0),
        (0.0, MIN_WAIT),  # "now" still waits the floor
    ],
)
def test_retry_after_is_waited_with_a_spread_of_a_tenth_up_to_a_second(
    retry_after: float, wait: float
) -> None:
    policy = retry_policy(initial=0.1, cap=1.0, rng=Ceiling())
    assert policy.backoff(1, retry_after=retry_after) == pytest.approx(wait)


def test_retry_after_is_honoured_and_max_time_gives_up() -> None:
    policy = retry_policy(initial=0.1, cap=1.0, max_time=30.0, rng=random.Random(3))
    assert all(5.0 <= policy.backoff(1, retry_after=5.0) <= 5.5 for _ in range(100))
    assert not policy.gives_up(elapsed=20.0, next_wait=9.0)
    assert policy.gives_up(elapsed=25.0, next_wait=9.0)
    assert not retry_policy(max_time=0).gives_up(elapsed=1e9, next_wait=60.0)


# --- the retry budget


def test_a_wait_that_ends_exactly_at_the_budget_is_still_waited() -> None:
    policy = retry_policy(max_time=10.0)
    assert not policy.gives_up(elapsed=6.0, next_wait=4.0)
    assert policy.gives_up(elapsed=6.0, next_wait=4.5)


def test_a_budget_under_a_second_is_a_budget_not_forever() -> None:
    # Only 0 means "retry forever" (LRX_SINK_RETRY_MAX_TIME).
    policy = retry_policy(max_time=0.5)
    assert not policy.gives_up(elapsed=0.25, next_wait=0.25)
    assert policy.gives_up(elapsed=0.25, next_wait=0.5)


# --- Retry-After


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:30 GMT", NOW) == 30.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_an_http_date_is_read_in_its_own_zone_and_one_without_a_zone_as_utc() -> None:
    assert parse_retry_after("Sun, 01 Mar 2026 13:00:30 +0100", NOW) == 30.0
    # "-0000" is RFC 5322's "zone unknown"; HTTP dates are UTC.
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:30 -0000", NOW) == 30.0


def test_an_http_date_already_past_means_retry_at_once() -> None:
    assert parse_retry_after("Sun, 01 Mar 2026 11:59:00 GMT", NOW) == 0.0


def test_an_http_date_without_a_given_now_counts_from_the_current_utc_time() -> None:
    value = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    # The header has whole seconds, and the clock moves on while this runs.
    assert 58.0 <= parse_retry_after(value) <= 60.0
