"""The arithmetic behind every analytics figure, at its edges: KST days, periods, ratios, changes,
rounding of won, splits that keep every won, medians and monthly subscription amounts."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.analytics import customers, rules
from core.errors import ValidationFailed


@pytest.mark.parametrize(
    ("instant", "day"),
    [
        (datetime(2027, 3, 14, 14, 59, 59, tzinfo=UTC), date(2027, 3, 14)),  # 23:59:59 KST
        (datetime(2027, 3, 14, 15, 0, tzinfo=UTC), date(2027, 3, 15)),  # KST midnight
        (datetime(2027, 3, 15, 0, 0, tzinfo=timezone(timedelta(hours=9))), date(2027, 3, 15)),
        (datetime(2027, 3, 15, 20, 0, tzinfo=timezone(timedelta(hours=9))), date(2027, 3, 15)),
        (datetime(2027, 3, 15, 8, 0, tzinfo=timezone(timedelta(hours=-5))), date(2027, 3, 15)),  # 22:00 KST
        (datetime(2027, 3, 14, 15, 0), date(2027, 3, 15)),  # naive instants are UTC (as stored)
        (datetime(2026, 12, 31, 15, 0, tzinfo=UTC), date(2027, 1, 1)),  # new year in Korea
    ],
)
def test_a_sale_belongs_to_its_korean_day(instant, day):
    assert rules.kst_day(instant) == day


def test_a_sale_day_is_korean_even_on_a_server_set_to_korean_time(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Seoul")
    time.tzset()
    try:
        assert rules.kst_day(datetime(2027, 3, 14, 15, 0, tzinfo=UTC)) == date(2027, 3, 15)
        assert rules.kst_day(datetime(2027, 3, 14, 14, 59, tzinfo=UTC)) == date(2027, 3, 14)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_months_are_counted_by_calendar_month():
    assert rules.month_start(date(2027, 3, 31)) == date(2027, 3, 1)
    assert rules.months_between(date(2026, 12, 31), date(2027, 1, 1)) == 1
    assert rules.months_between(date(2027, 1, 1), date(2027, 1, 31)) == 0
    assert rules.months_between(date(2025, 11, 1), date(2027, 2, 1)) == 15
    assert rules.add_months(date(2027, 1, 31), 1) == date(2027, 2, 1)
    assert rules.add_months(date(2026, 12, 15), 1) == date(2027, 1, 1)
    assert rules.add_months(date(2027, 1, 1), -1) == date(2026, 12, 1)
    assert rules.add_months(date(2027, 3, 1), 0) == date(2027, 3, 1)
    assert rules.add_months(date(2027, 3, 1), 12) == date(2028, 3, 1)


@pytest.mark.parametrize(
    ("day", "grain", "start"),
    [
        (date(2027, 3, 17), "day", date(2027, 3, 17)),
        (date(2027, 3, 17), "week", date(2027, 3, 15)),  # Wednesday -> Monday
        (date(2027, 3, 15), "week", date(2027, 3, 15)),  # Monday itself
        (date(2027, 3, 21), "week", date(2027, 3, 15)),  # Sunday belongs to the week before
        (date(2027, 1, 2), "week", date(2026, 12, 28)),  # across the year
        (date(2027, 3, 31), "month", date(2027, 3, 1)),
    ],
)
def test_a_day_falls_in_its_day_monday_week_or_month_bucket(day, grain, start):
    assert rules.period_start(day, grain) == start


def test_an_unknown_grain_is_refused_in_korean():
    with pytest.raises(ValidationFailed, match="알 수 없는 단위입니다: year"):
        rules.period_start(date(2027, 3, 1), "year")


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(1, 4, 0.25), (0, 4, 0.0), (3, 0, None), (3, 0.0, None), (5, 2, 2.5)],
)
def test_a_ratio_of_nothing_is_no_figure(numerator, denominator, expected):
    assert rules.ratio(numerator, denominator) == expected


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (5, 2, 3),  # 2.5 -> 3: half up
        (7, 2, 4),  # 3.5 -> 4
        (4, 3, 1),  # 1.33 -> 1
        (5, 3, 2),  # 1.67 -> 2
        (-5, 2, -3),  # half away from zero
        (5, -2, -3),
        (-5, -2, 3),
        (-4, 3, -1),
        (0, 7, 0),
        (39_000, 12, 3_250),
        (1, 0, None),
    ],
)
def test_won_are_divided_rounding_half_away_from_zero(numerator, denominator, expected):
    assert rules.rounded_div(numerator, denominator) == expected


@pytest.mark.parametrize(
    ("current", "previous", "expected"),
    [
        (150, 100, 0.5),
        (50, 100, -0.5),
        (100, 100, 0.0),
        (0, 100, -1.0),
        (50, -100, 1.5),  # against a negative period (refunds exceeded sales): the sign stays meaningful
        (100, 0, None),  # nothing before: no percentage
        (None, 100, None),
        (100, None, None),
    ],
)
def test_change_against_the_previous_period(current, previous, expected):
    assert rules.change(current, previous) == expected


@pytest.mark.parametrize(
    ("first", "last", "error"),
    [
        (date(2027, 3, 2), date(2027, 3, 1), "^종료일이 시작일보다 빠릅니다. 기간을 다시 선택해 주세요.$"),
        (
            date(2000, 1, 1),
            date(2000, 1, 1) + timedelta(days=366 * 20 + 1),
            "^기간은 20년 이내로 선택해 주세요.$",
        ),
    ],
)
def test_a_backwards_or_endless_range_is_refused_in_korean(first, last, error):
    with pytest.raises(ValidationFailed, match=error):
        rules.check_range(first, last)


@pytest.mark.parametrize(
    ("first", "last"),
    [(date(2027, 3, 1), date(2027, 3, 1)), (date(2000, 1, 1), date(2000, 1, 1) + timedelta(days=366 * 20))],
)
def test_one_day_and_twenty_years_are_valid_ranges(first, last):
    assert rules.check_range(first, last) is None


@pytest.mark.parametrize(
    ("first", "last", "previous"),
    [
        (date(2027, 3, 1), date(2027, 3, 31), (date(2027, 1, 29), date(2027, 2, 28))),  # 31 days before
        (date(2027, 3, 15), date(2027, 3, 15), (date(2027, 3, 14), date(2027, 3, 14))),
        (date(2027, 1, 1), date(2027, 1, 7), (date(2026, 12, 25), date(2026, 12, 31))),
    ],
)
def test_the_previous_period_has_the_same_length_and_ends_the_day_before(first, last, previous):
    assert rules.previous_range(first, last) == previous


@pytest.mark.parametrize(
    ("total", "weights", "shares"),
    [
        (10_000, [1, 1, 1], [3_333, 3_333, 3_334]),  # the remainder on the last share
        (10_000, [2, 1], [6_666, 3_334]),
        (39_000, [1], [39_000]),
        (1_000, [0, 0], [0, 1_000]),  # no weights: all on the last
        (1_000, [], []),
        (-1_000, [1, 1, 1], [-334, -334, -332]),  # a refund split the same way
        (0, [3, 5], [0, 0]),
    ],
)
def test_a_split_keeps_every_won(total, weights, shares):
    assert rules.split_amount(total, weights) == shares


@given(total=st.integers(-(10**9), 10**9), weights=st.lists(st.integers(0, 1000), min_size=1, max_size=8))
def test_any_split_adds_up_to_the_total(total, weights):
    assert sum(rules.split_amount(total, weights)) == total


@pytest.mark.parametrize(
    "values",
    [[5], [1, 2], [3, 1, 2], [1, 1, 1, 9], [1, 2, 3, 4], [7, 7, 30, 30, 30, 90], [10, 20, 20, 40]],
)
def test_the_median_of_counted_values_is_the_plain_median(values):
    counts: dict[int, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    assert rules._median_of_counts(counts) == statistics.median(values)


@given(st.lists(st.integers(0, 400), min_size=1, max_size=40))
def test_any_median_of_counts_is_the_median(values):
    counts: dict[int, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    assert rules._median_of_counts(counts) == statistics.median(values)


@pytest.mark.parametrize(
    ("amount", "unit", "count", "monthly"),
    [
        (39_000, "month", 1, 39_000),
        (39_000, "month", 3, 13_000),
        (10_000, "month", 3, 3_333),
        (20_000, "month", 3, 6_667),  # 6,666.67 rounds up
        (12_000, "week", 1, 52_000),  # 52 weeks a year / 12 months
        (12_000, "week", 2, 26_000),
        (1_000, "day", 1, 30_417),  # 365 days a year / 12 months: 30,416.67
        (1_000, "day", 7, 4_345),  # 4,345.24
        (39_000, "month", 0, 39_000),  # a broken count counts as 1
        (0, "month", 1, 0),  # a free plan adds nothing
        (0, "week", 1, 0),
        (0, "day", 1, 0),
    ],
)
def test_a_subscription_counts_its_amount_per_month(amount, unit, count, monthly):
    assert customers.monthly_amount(amount, unit, count) == monthly
