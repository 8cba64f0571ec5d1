"""Billing dates at their edges: retry offsets as the owner types them, notice lead times, bounds."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest

from core.billing.dates import (
    Interval,
    anchored_day,
    charge_date_on_or_after,
    first_charge_date,
    korean_date,
    kst_instant,
    notice_date,
    notice_window,
    retry_dates,
    review_delay,
    schedule,
    when_words,
)

DUE = date(2027, 2, 26)


@pytest.mark.parametrize(
    ("offsets", "expected"),
    [
        ((1, 3, 7), [date(2027, 2, 27), date(2027, 3, 1), date(2027, 3, 5)]),  # across February's end
        ((7, 1, 3), [date(2027, 2, 27), date(2027, 3, 1), date(2027, 3, 5)]),  # typed out of order
        ((1, 3, 3, 7), [date(2027, 2, 27), date(2027, 3, 1), date(2027, 3, 5)]),  # a day listed twice
        ((3, 3), [date(2027, 3, 1)]),
        ([2.0, "5"], [date(2027, 2, 28), date(2027, 3, 3)]),  # as stored settings may hold them
        ((), []),  # no retries: the charge fails at once
    ],
)
def test_each_retry_day_is_tried_once_in_order(offsets, expected):
    assert retry_dates(DUE, offsets) == expected


@pytest.mark.parametrize("offsets", [(0,), (-1, 3), (1, 0), (1.5,), (True, 3)])
def test_retry_offsets_that_are_not_whole_positive_days_are_refused(offsets):
    with pytest.raises(ValueError, match=r"^retry offsets must be (whole|positive) days"):
        retry_dates(DUE, offsets)


@pytest.mark.parametrize(
    ("lead", "expected"), [(0, date(2027, 3, 1)), (1, date(2027, 2, 28)), (14, date(2027, 2, 15))]
)
def test_the_notice_goes_lead_days_before_the_charge(lead, expected):
    assert notice_date(date(2027, 3, 1), lead) == expected


def test_a_negative_notice_lead_is_refused():
    with pytest.raises(ValueError, match="^notice lead time cannot be negative$"):
        notice_date(date(2027, 3, 1), -1)


@pytest.mark.parametrize("anchor", [0, 32, -1])
def test_an_anchor_outside_1_to_31_is_refused(anchor):
    with pytest.raises(ValueError, match=r"^anchor day must be 1\.\.31$"):
        anchored_day(2027, 3, anchor)


@pytest.mark.parametrize(("anchor", "expected"), [(1, 1), (28, 28), (29, 28), (31, 28)])
def test_the_anchor_falls_back_to_the_last_day_of_a_short_month(anchor, expected):
    assert anchored_day(2027, 2, anchor) == date(2027, 2, expected)


@pytest.mark.parametrize(
    ("unit", "count", "days"),
    [("week", 1, 7), ("week", 2, 14), ("day", 1, 1), ("day", 10, 10), ("month", 1, None)],
)
def test_fixed_intervals_have_a_length_in_days_and_months_have_none(unit, count, days):
    assert Interval(unit, count).days == days


@pytest.mark.parametrize(
    ("unit", "count", "error"),
    [
        ("month", 0, "^interval count must be at least 1$"),
        ("week", -1, "^interval count must be at least 1$"),
        ("year", 1, "^unknown interval unit 'year'"),
        ("Month", 1, "^unknown interval unit 'Month'"),
    ],
)
def test_an_interval_must_be_a_known_unit_at_least_once(unit, count, error):
    with pytest.raises(ValueError, match=error):
        Interval(unit, count)


@pytest.mark.parametrize("unit", ["week", "day"])
def test_weekly_and_daily_plans_charge_first_on_the_start_day(unit):
    assert first_charge_date(date(2027, 2, 26), 3, Interval(unit, 2)) == date(2027, 2, 26)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (date(2027, 3, 14), date(2027, 3, 15)),
        (date(2027, 3, 15), date(2027, 3, 15)),
        (date(2027, 3, 16), date(2027, 4, 15)),
    ],
)
def test_a_monthly_plan_charges_first_on_the_next_anchor_day_or_that_very_day(start, expected):
    assert first_charge_date(start, 15) == expected


def test_resuming_lands_on_a_charge_date_never_before_the_day():
    weekly = Interval("week", 1)
    assert charge_date_on_or_after(date(2027, 3, 1), date(2027, 3, 8), 1, weekly) == date(2027, 3, 8)
    assert charge_date_on_or_after(date(2027, 3, 1), date(2027, 3, 9), 1, weekly) == date(2027, 3, 15)
    assert charge_date_on_or_after(date(2027, 3, 1), date(2027, 2, 1), 1, weekly) == date(2027, 3, 1)


def test_a_schedule_has_exactly_the_count_asked():
    assert schedule(date(2027, 1, 31), 31, Interval(), 1) == [date(2027, 1, 31)]
    assert len(schedule(date(2027, 1, 31), 31, Interval(), 3)) == 3


@pytest.mark.parametrize(("days", "words"), [(0, "오늘"), (1, "내일"), (2, "2일 후"), (7, "7일 후")])
def test_when_words_in_korean(days, words):
    today = date(2027, 2, 27)
    assert when_words(date.fromordinal(today.toordinal() + days), today) == words


@pytest.mark.parametrize(
    ("args", "utc"),
    [
        ((), "2027-03-14T15:00:00+00:00"),  # midnight in Korea is 15:00 UTC the day before
        ((9,), "2027-03-15T00:00:00+00:00"),
        ((9, 30), "2027-03-15T00:30:00+00:00"),
        ((23, 59), "2027-03-15T14:59:00+00:00"),
    ],
)
def test_kst_instant_is_the_korean_wall_time_as_utc(args, utc):
    instant = kst_instant(date(2027, 3, 15), *args)
    assert instant.isoformat() == utc and instant.utcoffset().total_seconds() == 0


def test_kst_instant_is_utc_even_on_a_server_set_to_korean_time(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Seoul")
    time.tzset()
    try:
        instant = kst_instant(date(2027, 3, 15), 9)
        assert instant.isoformat() == "2027-03-15T00:00:00+00:00"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_korean_date_has_no_leading_zeros():
    assert korean_date(date(2027, 3, 1)) == "3월 1일"
    assert korean_date(date(2027, 12, 31)) == "12월 31일"


# ------------------------------------------------------------------ an unknown charge's lookup ladder


@pytest.mark.parametrize(
    ("checks", "delay"),
    [(1, timedelta(minutes=5)), (2, timedelta(minutes=30)), (3, timedelta(hours=2)), (4, None), (9, None)],
)
def test_an_unknown_charge_is_looked_up_again_by_the_ladder_then_left_to_a_person(checks, delay):
    """Each step of the ladder once, in order; past its last step the gateway is not asked again."""
    assert review_delay(checks, (5, 30, 120)) == delay


@pytest.mark.parametrize("checks", [0, -1])
def test_lookups_are_counted_from_1(checks):
    with pytest.raises(ValueError, match="^checks start at 1$"):
        review_delay(checks)


def test_a_notice_lead_time_cannot_be_negative():
    with pytest.raises(ValueError, match="^notice lead time cannot be negative$"):
        notice_window(date(2027, 3, 15), -1)
