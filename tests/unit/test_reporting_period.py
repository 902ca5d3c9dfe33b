"""Reporting periods: labelled, half-open, exact to the millisecond, tiling time across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploy.settings import Settings
from streams.rules.reporting_period import (
    FISCAL_YEAR,
    ReportingCalendar,
    ReportingPeriodError,
    period_of,
)

TORONTO = ZoneInfo("America/Toronto")
MS = timedelta(milliseconds=1)


def test_the_default_is_the_fiscal_year_in_toronto():
    period = period_of(datetime(2026, 9, 15, 12, tzinfo=UTC))
    assert period.label == "2026-27"
    # April 1 midnight in Toronto is daylight time (UTC-4) in both years.
    assert period.start == datetime(2026, 4, 1, 4, tzinfo=UTC)
    assert period.end == datetime(2027, 4, 1, 4, tzinfo=UTC)


def test_the_default_settings_give_the_default_calendar():
    settings = Settings.from_env({})
    assert ReportingCalendar.parse(settings.period_start, settings.period_timezone) == FISCAL_YEAR


def test_boundaries_are_exact_to_the_millisecond_in_local_time():
    boundary = datetime(2027, 4, 1, tzinfo=TORONTO)
    assert period_of(boundary).label == "2027-28"
    assert period_of(boundary - MS).label == "2026-27"
    # 2027-04-01 02:00 UTC is still March 31 in Toronto.
    assert period_of(datetime(2027, 4, 1, 2, tzinfo=UTC)).label == "2026-27"


def test_periods_are_half_open():
    period = FISCAL_YEAR.period_starting_in(2026)
    assert period.start in period
    assert period.end - MS in period
    assert period.end not in period


def test_the_label_of_a_calendar_year_is_the_year():
    calendar = ReportingCalendar.parse("01-01", "America/Toronto")
    period = calendar.period_of(datetime(2026, 1, 1, 5, tzinfo=UTC))
    assert period.label == "2026"
    assert period_of(datetime(2026, 1, 1, 4, 59, 59, 999000, tzinfo=UTC), calendar).label == "2025"


def test_a_century_turn_keeps_two_digits():
    assert FISCAL_YEAR.period_starting_in(2099).label == "2099-00"


def test_a_period_starting_on_a_dst_change_day_keeps_local_midnight():
    # Toronto springs forward at 02:00 on 2024-03-10: midnight is still EST (UTC-5); the next
    # start, 2025-03-10, is after 2025's change (March 9), so it is EDT (UTC-4).
    period = ReportingCalendar(3, 10, "America/Toronto").period_starting_in(2024)
    assert period.start == datetime(2024, 3, 10, 5, tzinfo=UTC)
    assert period.end == datetime(2025, 3, 10, 4, tzinfo=UTC)


def test_a_midnight_skipped_by_dst_starts_at_the_first_instant_after_the_gap():
    # Santiago jumped from 00:00 -04 to 01:00 -03 on 2024-09-08.
    period = ReportingCalendar(9, 8, "America/Santiago").period_starting_in(2024)
    assert period.start == datetime(2024, 9, 8, 4, tzinfo=UTC)
    assert period_of(period.start - MS, ReportingCalendar(9, 8, "America/Santiago")).label == (
        "2023-24"
    )


def test_a_start_day_a_zone_skipped_entirely_starts_where_the_gap_ends():
    # Samoa skipped 2011-12-30: 2011-12-29 24:00 -10 was followed by 2011-12-31 00:00 +14.
    calendar = ReportingCalendar(12, 30, "Pacific/Apia")
    period = calendar.period_starting_in(2011)
    assert period.start == datetime(2011, 12, 30, 10, tzinfo=UTC)
    assert calendar.period_starting_in(2010).end == period.start
    assert calendar.period_of(period.start - MS).label == "2010-11"


def test_labels_find_their_period():
    assert FISCAL_YEAR.period_labelled("2026-27") == FISCAL_YEAR.period_starting_in(2026)
    with pytest.raises(ReportingPeriodError, match="'2026-28' does not exist"):
        FISCAL_YEAR.period_labelled("2026-28")
    with pytest.raises(ReportingPeriodError, match="'2026' does not exist.*'2026-27'"):
        FISCAL_YEAR.period_labelled("2026")
    with pytest.raises(ReportingPeriodError, match="'FY26' is not YYYY-YY"):
        FISCAL_YEAR.period_labelled("FY26")


@pytest.mark.parametrize(
    ("start", "timezone", "message"),
    [
        ("13-01", "America/Toronto", "13-01 is not a day"),
        ("02-29", "America/Toronto", "February 29"),
        ("04-31", "America/Toronto", "04-31 is not a day"),
        ("April 1", "America/Toronto", "'April 1' is not MM-DD"),
        ("04-01", "Toronto", "'Toronto' is not an IANA zone"),
        ("04-01", "", "'' is not an IANA zone"),
    ],
)
def test_bad_calendars_are_refused_with_the_value(start, timezone, message):
    with pytest.raises(ReportingPeriodError, match=message):
        ReportingCalendar.parse(start, timezone)


def test_bad_calendars_say_what_a_start_and_a_zone_must_be():
    with pytest.raises(ReportingPeriodError) as caught:
        ReportingCalendar(2, 29)
    assert str(caught.value) == (
        "reporting period start 02-29 is not a day that every year has "
        "(MM-DD; February 29 is not allowed)"
    )
    with pytest.raises(ReportingPeriodError) as caught:
        ReportingCalendar(timezone="Toronto")
    assert str(caught.value) == (
        "reporting period time zone 'Toronto' is not an IANA zone (e.g. America/Toronto)"
    )


def test_a_naive_instant_is_refused():
    with pytest.raises(ReportingPeriodError, match="has no time zone"):
        period_of(datetime(2026, 5, 1))


class NoOffset(tzinfo):
    """A tzinfo that knows no offset: Python counts such a datetime as naive."""

    def utcoffset(self, dt):
        return None


def test_an_instant_whose_zone_gives_no_offset_is_refused_as_naive():
    # Converting it would silently read it as the machine's local time.
    with pytest.raises(ReportingPeriodError, match="instant 2026-05-01T00:00:00 has no time zone"):
        period_of(datetime(2026, 5, 1, tzinfo=NoOffset()))


def test_an_instant_a_fall_back_puts_on_the_previous_local_day_is_in_the_period_that_began():
    # Moncton ended DST at 00:01 ADT until 2006: on 2000-10-29 local midnight came at 03:00 UTC,
    # and at 03:01 UTC the clocks went back to 23:01 on October 28. 03:30 UTC reads 23:30
    # on the 28th, yet it is after the midnight that began 2000-01.
    calendar = ReportingCalendar(10, 29, "America/Moncton")
    period = calendar.period_of(datetime(2000, 10, 29, 3, 30, tzinfo=UTC))
    assert (period.label, period.start) == ("2000-01", datetime(2000, 10, 29, 3, tzinfo=UTC))
    assert calendar.period_of(period.start - MS).label == "1999-00"


def test_an_instant_in_a_jump_over_midnight_is_in_the_period_returned_for_it():
    # Toronto jumped from 23:30 EST on 1919-03-30 to 00:30 EDT (04:30 UTC): March 31 had no
    # midnight, and its first half hour is before the instant the period start resolves to.
    calendar = ReportingCalendar(3, 31, "America/Toronto")
    instant = datetime(1919, 3, 31, 4, 45, tzinfo=UTC)  # 00:45 EDT on March 31
    period = calendar.period_of(instant)
    assert instant in period
    assert calendar.period_of(period.end).start == period.end


# --- properties: every instant is in exactly one period; periods tile time ----------------

# Zones with DST at midnight (Santiago, Havana, Beirut), a half-hour offset (St John's),
# a zone that skipped a whole day (Apia, 2011-12-30), and ones without DST.
zones = st.sampled_from(
    [
        "America/Toronto",
        "America/St_Johns",
        "America/Santiago",
        "America/Havana",
        "Asia/Beirut",
        "Pacific/Apia",
        "Australia/Lord_Howe",
        "UTC",
        "Asia/Kolkata",
    ]
)
calendars = st.builds(
    ReportingCalendar,
    month=st.integers(1, 12),
    day=st.integers(1, 28),
    timezone=zones,
)
instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(lambda instant: instant.replace(microsecond=instant.microsecond // 1000 * 1000))


@given(calendars, instants)
def test_every_instant_falls_in_exactly_one_period(calendar, instant):
    period = calendar.period_of(instant)
    assert instant in period
    before = calendar.period_of(period.start - MS)
    after = calendar.period_of(period.end)
    # Neighbours touch without gap or overlap, and do not contain the instant.
    assert before.end == period.start and period.end == after.start
    assert instant not in before and instant not in after
    assert before.label < period.label < after.label
    # 364 days exactly: Apia's 2011, which skipped 2011-12-30 when Samoa crossed the date line.
    assert timedelta(days=364) <= period.end - period.start < timedelta(days=367)


@given(calendars, st.integers(1971, 2098))
def test_consecutive_periods_tile(calendar, year):
    period = calendar.period_starting_in(year)
    following = calendar.period_starting_in(year + 1)
    assert period.end == following.start
    assert calendar.period_of(period.start) == period
    assert calendar.period_of(period.end - MS) == period
    assert calendar.period_labelled(period.label) == period
