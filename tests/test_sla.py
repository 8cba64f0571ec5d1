"""The SLA engine: table-driven cases for every documented rule, and hypothesis properties."""

from __future__ import annotations

import time as _time
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.clock import KST
from core.errors import ValidationFailed
from core.inquiries import sla
from core.inquiries.policy import SETTING_DEFAULTS as DEFAULTS
from tests.test_sla_rules import cold_calendar_caches  # noqa: F401 (autouse: no remembered calendar)

BUSINESS = sla.business(DEFAULTS["business_hours"])  # Mon-Fri 09-12, 13-18 KST; holidays observed
H = timedelta(hours=1)
M = timedelta(minutes=1)


def k(text: str) -> datetime:
    """A KST wall time like '2026-11-23 09:00' as an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=KST).astimezone(UTC)


# start, target, expected deadline (KST); 2026-11-23 is a Monday.
DEADLINE_CASES = [
    ("inside morning window", "2026-11-23 09:00", 30 * M, "2026-11-23 09:30"),
    (
        "target fills window exactly: the window end, not next opening",
        "2026-11-23 11:00",
        H,
        "2026-11-23 12:00",
    ),
    ("crosses lunch break", "2026-11-23 11:30", H, "2026-11-23 13:30"),
    ("start during lunch counts from 13:00", "2026-11-23 12:20", 30 * M, "2026-11-23 13:30"),
    ("start before opening", "2026-11-23 07:00", 30 * M, "2026-11-23 09:30"),
    ("start after closing: next day", "2026-11-23 19:00", 30 * M, "2026-11-24 09:30"),
    ("friday evening to monday", "2026-11-27 17:30", H, "2026-11-30 09:30"),
    ("saturday start", "2026-11-28 10:00", 30 * M, "2026-11-30 09:30"),
    ("24h target = 3 business days", "2026-11-23 09:00", 24 * H, "2026-11-25 18:00"),
    ("month end", "2026-11-30 17:00", 2 * H, "2026-12-01 10:00"),
    ("year end: new year's day is a holiday", "2026-12-31 17:00", 2 * H, "2027-01-04 10:00"),
    ("christmas (friday) skipped", "2026-12-24 17:30", H, "2026-12-28 09:30"),
    ("lunar new year 2026-02-16..18 skipped", "2026-02-13 17:30", H, "2026-02-19 09:30"),
    ("chuseok 2026-09-24..25 skipped", "2026-09-23 17:30", H, "2026-09-28 09:30"),
    ("substitute holiday 2026-03-02 (monday)", "2026-02-27 17:30", H, "2026-03-03 09:30"),
    ("substitute holiday 2026-10-05 (monday)", "2026-10-02 17:30", H, "2026-10-06 09:30"),
]


@pytest.mark.parametrize(
    ("name", "start", "target", "expected"), DEADLINE_CASES, ids=[c[0] for c in DEADLINE_CASES]
)
def test_business_deadline(name: str, start: str, target: timedelta, expected: str) -> None:
    assert sla.deadline(BUSINESS, k(start), target) == k(expected)


def test_twenty_four_seven_ignores_hours_and_holidays() -> None:
    assert sla.deadline(sla.TWENTY_FOUR_SEVEN, k("2026-12-31 23:30"), H) == k("2027-01-01 00:30")


def test_one_off_closed_day_and_holidays_can_be_switched_off() -> None:
    closed = sla.business(DEFAULTS["business_hours"], closed_days=[date(2026, 11, 24)])
    assert sla.deadline(closed, k("2026-11-23 17:30"), H) == k("2026-11-25 09:30")
    no_holidays = sla.business(DEFAULTS["business_hours"], observe_public_holidays=False)
    assert sla.deadline(no_holidays, k("2026-12-24 17:30"), H) == k("2026-12-25 09:30")


def test_pauses_do_not_count() -> None:
    start = k("2026-11-23 09:00")
    pauses = [(k("2026-11-23 09:10"), k("2026-11-23 10:10"))]
    assert sla.deadline(BUSINESS, start, 30 * M, pauses) == k("2026-11-23 10:30")
    # Still waiting: no deadline while the clock is stopped.
    assert sla.deadline(BUSINESS, start, 30 * M, [(k("2026-11-23 09:10"), None)]) is None
    # Pause fully outside hours changes nothing.
    night = [(k("2026-11-23 19:00"), k("2026-11-24 08:00"))]
    assert sla.deadline(BUSINESS, k("2026-11-23 17:30"), H, night) == k("2026-11-24 09:30")


def test_counted_time() -> None:
    assert sla.counted(BUSINESS, k("2026-11-23 08:00"), k("2026-11-23 14:00")) == 4 * H
    assert sla.counted(BUSINESS, k("2026-11-23 14:00"), k("2026-11-23 08:00")) == timedelta(0)


def ev(at: str, kind: str) -> sla.SlaEvent:
    return sla.SlaEvent(k(at), kind)


PAYMENT_ERROR = sla.policy_minutes("payment_error", 30, 240)

STATE_CASES = [
    # name, events, now, expected first-response state, expected resolution state
    ("on track", [("09:00", "created")], "09:10", "on_track", "on_track"),
    ("at risk at 80% (24 of 30 min)", [("09:00", "created")], "09:24", "at_risk", "on_track"),
    ("exactly at deadline is not breached", [("09:00", "created")], "09:30", "at_risk", "on_track"),
    ("one second late is breached", [("09:00", "created")], "09:30:01", "breached", "on_track"),
    (
        "answer exactly at deadline is met",
        [("09:00", "created"), ("09:30", "reply")],
        "11:00",
        "met",
        "on_track",
    ),
    (
        "answer late is missed even if resolved between ticks",
        [("09:00", "created"), ("09:31", "reply"), ("09:32", "resolve")],
        "09:33",
        "missed",
        "met",
    ),
    (
        "waiting on customer pauses",
        [("09:00", "created"), ("09:10", "wait_customer")],
        "11:00",
        "paused",
        "paused",
    ),
    (
        "resume after customer message",
        [("09:00", "created"), ("09:10", "wait_customer"), ("10:50", "customer_message")],
        "11:00",
        "on_track",
        "on_track",
    ),
    (
        "resolve without reply counts as the answer",
        [("09:00", "created"), ("09:20", "resolve")],
        "17:00",
        "met",
        "met",
    ),
    (
        "reopen resumes resolution clock",
        [("09:00", "created"), ("09:05", "reply"), ("10:00", "resolve"), ("16:00", "reopen")],
        "16:10",
        "met",
        "on_track",
    ),
    (
        "closed time between resolve and reopen never counts",
        [("09:00", "created"), ("09:05", "reply"), ("12:00", "resolve"), ("17:00", "reopen")],
        "17:59",
        "met",
        "at_risk",
    ),
]


@pytest.mark.parametrize(
    ("name", "events", "now", "first", "resolution"), STATE_CASES, ids=[c[0] for c in STATE_CASES]
)
def test_states(name: str, events: list[tuple[str, str]], now: str, first: str, resolution: str) -> None:
    timeline = [ev(f"2026-11-23 {at}", kind) for at, kind in events]
    result = sla.evaluate(PAYMENT_ERROR, BUSINESS, timeline, k(f"2026-11-23 {now}"))
    assert (result.first_response.state, result.resolution.state) == (first, resolution)


def test_breach_and_miss_report_how_late() -> None:
    timeline = [ev("2026-11-23 09:00", "created")]
    result = sla.evaluate(PAYMENT_ERROR, BUSINESS, timeline, k("2026-11-23 09:45"))
    assert result.first_response.late_by == 15 * M
    assert result.nearest is result.first_response
    timeline.append(ev("2026-11-23 10:00", "reply"))
    result = sla.evaluate(PAYMENT_ERROR, BUSINESS, timeline, k("2026-11-23 10:05"))
    assert result.first_response.state == sla.SlaState.MISSED
    assert result.first_response.late_by == 30 * M
    assert result.nearest is result.resolution


def test_wall_clock_deadline_differs_from_business_deadline() -> None:
    timeline = [ev("2026-11-23 17:50", "created")]
    result = sla.evaluate(PAYMENT_ERROR, BUSINESS, timeline, k("2026-11-23 17:55"))
    assert result.first_response.due_at == k("2026-11-24 09:20")
    assert result.first_response.wall_clock_due_at == k("2026-11-23 18:20")


def test_24_7_policy_uses_round_the_clock_calendar() -> None:
    policy = sla.policy_minutes("receipt_request", 5, 10, calendar="24/7")
    result = sla.evaluate(policy, BUSINESS, [ev("2026-11-28 23:00", "created")], k("2026-11-28 23:01"))
    assert result.first_response.due_at == k("2026-11-28 23:05")


@pytest.mark.parametrize(("first", "resolution"), [(0, 10), (10, 0), (-5, 10), (10, -1)])
def test_zero_or_negative_targets_rejected(first: int, resolution: int) -> None:
    with pytest.raises(ValidationFailed):
        sla.policy_minutes("payment_error", first, resolution)
    with pytest.raises(ValidationFailed):
        sla.deadline(BUSINESS, k("2026-11-23 09:00"), timedelta(minutes=min(first, resolution)))


@pytest.mark.parametrize("share", [0, 1, 1.5, -0.1])
def test_bad_at_risk_share_rejected(share: float) -> None:
    with pytest.raises(ValidationFailed):
        sla.policy_minutes("payment_error", 30, 60, at_risk_share=share)


def test_calendar_without_open_hours_is_a_clear_error() -> None:
    with pytest.raises(sla.NoOpenHours, match="영업시간"):
        sla.business({str(d): [] for d in range(1, 8)})


def test_calendar_closed_for_years_stops_instead_of_looping() -> None:
    only_monday = sla.business({"1": [["09:00", "10:00"]]})
    # Close every Monday for the next 11 years: the walk must stop with an error, not spin.
    start = date(2026, 11, 23)
    mondays = [start + timedelta(weeks=w) for w in range(0, 600)]
    broken = sla.business({"1": [["09:00", "10:00"]]}, closed_days=mondays)
    assert sla.deadline(only_monday, k("2026-11-23 09:00"), H) == k("2026-11-23 10:00")
    began = _time.perf_counter()
    with pytest.raises(sla.NoOpenHours):
        sla.deadline(broken, k("2026-11-23 09:00"), H)
    assert _time.perf_counter() - began < 2


@pytest.mark.parametrize(
    "raw",
    [[["18:00", "09:00"]], [["09:00", "12:00"], ["11:00", "13:00"]], [["9", "10"]], [["25:00", "26:00"]]],
)
def test_bad_business_hours_rejected(raw: list[list[str]]) -> None:
    with pytest.raises(ValidationFailed):
        sla.business({"1": raw})


def test_window_to_midnight_allowed() -> None:
    late = sla.business({str(d): [["20:00", "24:00"]] for d in range(1, 8)}, observe_public_holidays=False)
    assert sla.deadline(late, k("2026-11-23 23:30"), H) == k("2026-11-24 20:30")


# --------------------------------------------------------------------------- properties

instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda d: d.replace(tzinfo=KST).astimezone(UTC)
)
targets = st.integers(min_value=1, max_value=5 * 24 * 60).map(lambda m: timedelta(minutes=m))
calendars = st.sampled_from([BUSINESS, sla.TWENTY_FOUR_SEVEN])


@st.composite
def pause_lists(draw: st.DrawFn, start: datetime) -> list[sla.Pause]:
    count = draw(st.integers(0, 3))
    result: list[sla.Pause] = []
    for _ in range(count):
        offset = draw(st.integers(0, 7 * 24 * 60))
        length = draw(st.integers(1, 3 * 24 * 60))
        begin = start + timedelta(minutes=offset)
        result.append((begin, begin + timedelta(minutes=length)))
    return result


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, start=instants, target=targets, data=st.data())
def test_deadline_never_precedes_start(
    calendar: sla.Calendar, start: datetime, target: timedelta, data: st.DataObject
) -> None:
    pauses = data.draw(pause_lists(start))
    due = sla.deadline(calendar, start, target, pauses)
    assert due is not None and due > start
    assert sla.counted(calendar, start, due, pauses) == target


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, start=instants, target=targets, data=st.data())
def test_more_pause_never_earlier(
    calendar: sla.Calendar, start: datetime, target: timedelta, data: st.DataObject
) -> None:
    pauses = data.draw(pause_lists(start))
    extra = data.draw(pause_lists(start))
    assert sla.deadline(calendar, start, target, pauses + extra) >= sla.deadline(
        calendar, start, target, pauses
    )


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, start=instants, target=targets, more=targets)
def test_longer_target_never_earlier(
    calendar: sla.Calendar, start: datetime, target: timedelta, more: timedelta
) -> None:
    assert sla.deadline(calendar, start, target + more) >= sla.deadline(calendar, start, target)


def test_deadline_is_fast() -> None:
    """A guard against an accidental day-by-day scan, on this process's CPU time (a busy machine's
    wall clock would fail it; the figures themselves are in bench/inquiries.py)."""
    began = _time.process_time()
    start = k("2026-11-23 09:00")
    for i in range(5000):
        sla.deadline(BUSINESS, start + timedelta(minutes=i), 24 * H)
    assert _time.process_time() - began < 1.0
