"""Billing date math: tables of cases and properties."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.billing.dates import (
    Interval,
    charge_date_on_or_after,
    first_charge_date,
    kst_instant,
    moved_words,
    next_charge_date,
    notice_date,
    notice_in_time,
    notice_window,
    noticed_charge_date,
    period_key,
    retry_dates,
    schedule,
    when_words,
)

MONTHLY = Interval("month", 1)


@pytest.mark.parametrize(
    ("current", "anchor", "interval", "expected"),
    [
        (date(2026, 1, 31), 31, MONTHLY, date(2026, 2, 28)),
        (date(2026, 2, 28), 31, MONTHLY, date(2026, 3, 31)),  # back to the 31st
        (date(2026, 3, 31), 31, MONTHLY, date(2026, 4, 30)),
        (date(2026, 4, 30), 31, MONTHLY, date(2026, 5, 31)),
        (date(2028, 1, 31), 31, MONTHLY, date(2028, 2, 29)),  # leap year
        (date(2028, 2, 29), 31, MONTHLY, date(2028, 3, 31)),
        (date(2028, 1, 30), 30, MONTHLY, date(2028, 2, 29)),
        (date(2028, 2, 29), 30, MONTHLY, date(2028, 3, 30)),
        (date(2027, 1, 29), 29, MONTHLY, date(2027, 2, 28)),
        (date(2027, 2, 28), 29, MONTHLY, date(2027, 3, 29)),
        (date(2026, 12, 31), 31, MONTHLY, date(2027, 1, 31)),  # year end
        (date(2026, 12, 15), 15, Interval("month", 3), date(2027, 3, 15)),
        (date(2026, 11, 30), 31, Interval("month", 3), date(2027, 2, 28)),
        (date(2026, 12, 28), 28, Interval("week", 1), date(2027, 1, 4)),
        (date(2026, 2, 27), 27, Interval("week", 2), date(2026, 3, 13)),
        (date(2026, 2, 27), 27, Interval("day", 10), date(2026, 3, 9)),
    ],
)
def test_next_charge_date(current: date, anchor: int, interval: Interval, expected: date) -> None:
    assert next_charge_date(current, anchor, interval) == expected


@pytest.mark.parametrize(
    ("start", "anchor", "expected"),
    [
        (date(2026, 2, 10), 31, date(2026, 2, 28)),
        (date(2026, 1, 31), 31, date(2026, 1, 31)),
        (date(2026, 3, 5), 1, date(2026, 4, 1)),
        (date(2026, 3, 1), 1, date(2026, 3, 1)),
        (date(2026, 12, 20), 10, date(2027, 1, 10)),
    ],
)
def test_first_charge_date(start: date, anchor: int, expected: date) -> None:
    assert first_charge_date(start, anchor) == expected


def test_twenty_four_months_anchored_on_the_31st_never_drift() -> None:
    dates = schedule(date(2027, 1, 31), 31, MONTHLY, 24)
    assert [d.day for d in dates[:14]] == [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31, 29]
    assert dates[-1] == date(2028, 12, 31)
    assert len({(d.year, d.month) for d in dates}) == 24


def test_notice_period_retry_and_words() -> None:
    assert notice_date(date(2026, 3, 1)) == date(2026, 2, 28)
    assert notice_date(date(2026, 3, 1), 3) == date(2026, 2, 26)
    assert period_key(date(2026, 3, 1)) == "2026-03-01"
    assert retry_dates(date(2026, 1, 31)) == [date(2026, 2, 1), date(2026, 2, 3), date(2026, 2, 7)]
    assert when_words(date(2026, 3, 1), date(2026, 2, 28)) == "내일"
    assert when_words(date(2026, 3, 1), date(2026, 2, 26)) == "3일 후"
    assert kst_instant(date(2026, 3, 1), 9).isoformat() == "2026-03-01T00:00:00+00:00"
    with pytest.raises(ValueError):
        retry_dates(date(2026, 1, 1), [0, 3])
    with pytest.raises(ValueError):
        Interval("year", 1)


def test_resume_skips_paused_periods() -> None:
    assert charge_date_on_or_after(date(2026, 1, 31), date(2026, 4, 15), 31) == date(2026, 4, 30)
    assert charge_date_on_or_after(date(2026, 1, 31), date(2026, 1, 31), 31) == date(2026, 1, 31)


@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)),
    anchor=st.integers(1, 31),
    months=st.integers(1, 12),
    steps=st.integers(1, 60),
)
def test_monthly_dates_are_always_the_anchor_or_the_month_end(
    start: date, anchor: int, months: int, steps: int
) -> None:
    interval = Interval("month", months)
    first = first_charge_date(start, anchor, interval)
    dates = schedule(first, anchor, interval, steps)
    for earlier, later in zip(dates, dates[1:], strict=False):
        assert later > earlier
        assert (later.year * 12 + later.month) - (earlier.year * 12 + earlier.month) == months
    for d in dates:
        month_end = (d.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        assert d.day == anchor or (d.day == month_end.day and anchor > month_end.day)


@given(start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)), every=st.integers(1, 60))
def test_fixed_intervals_are_exact(start: date, every: int) -> None:
    for unit, factor in (("week", 7), ("day", 1)):
        dates = schedule(start, start.day, Interval(unit, every), 5)
        assert all((b - a).days == every * factor for a, b in zip(dates, dates[1:], strict=False))


@pytest.mark.parametrize(
    ("today", "lead", "window"),
    [
        (date(2026, 12, 6), 1, (date(2026, 12, 7), date(2026, 12, 7))),
        (date(2026, 12, 6), 3, (date(2026, 12, 7), date(2026, 12, 9))),
        (date(2026, 12, 31), 1, (date(2027, 1, 1), date(2027, 1, 1))),
        (date(2026, 12, 6), 0, (date(2026, 12, 6), date(2026, 12, 6))),  # no lead: told on the day
    ],
)
def test_notice_window(today: date, lead: int, window: tuple[date, date]) -> None:
    assert notice_window(today, lead) == window


@pytest.mark.parametrize(
    ("charge", "today", "lead", "kept"),
    [
        (date(2026, 12, 7), date(2026, 12, 7), 1, date(2026, 12, 8)),  # the resume on the day
        (date(2026, 12, 8), date(2026, 12, 7), 1, date(2026, 12, 8)),  # tomorrow: a notice today is in time
        (date(2026, 12, 8), date(2026, 12, 7), 2, date(2026, 12, 9)),
        (date(2026, 12, 1), date(2026, 12, 7), 1, date(2026, 12, 8)),  # overdue, never told
        (date(2027, 1, 1), date(2026, 12, 31), 1, date(2027, 1, 1)),
        (date(2026, 12, 7), date(2026, 12, 7), 0, date(2026, 12, 7)),
    ],
)
def test_noticed_charge_date_keeps_the_lead(charge: date, today: date, lead: int, kept: date) -> None:
    assert noticed_charge_date(charge, today, lead) == kept
    assert notice_in_time(today, kept, lead)


@pytest.mark.parametrize(
    ("told", "charge", "lead", "in_time"),
    [
        (date(2026, 12, 6), date(2026, 12, 7), 1, True),
        (date(2026, 12, 7), date(2026, 12, 7), 1, False),
        (date(2026, 12, 6), date(2026, 12, 7), 2, False),
        (date(2026, 12, 5), date(2026, 12, 7), 2, True),
        (date(2026, 12, 7), date(2026, 12, 7), 0, True),
    ],
)
def test_notice_in_time(told: date, charge: date, lead: int, in_time: bool) -> None:
    assert notice_in_time(told, charge, lead) is in_time


@pytest.mark.parametrize(
    ("lead", "words"),
    [
        (1, "결제 예정일이 12월 8일로 조정되었습니다: 결제 전날 안내를 보내기 위해"),
        (3, "결제 예정일이 12월 8일로 조정되었습니다: 결제 3일 전 안내를 보내기 위해"),
        (0, "결제 예정일이 12월 8일로 조정되었습니다: 결제 당일 안내를 보내기 위해"),
    ],
)
def test_moved_words(lead: int, words: str) -> None:
    assert moved_words(date(2026, 12, 8), lead) == words
