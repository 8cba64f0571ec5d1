"""Pure billing date math, in Korean dates (KST has no DST, so a date is a date).

Every charge date is computed from the anchor (day of month, or the first charge date for weekly /
every-N-days plans), never from the previous charge date, so there is no drift: a subscription
anchored on the 31st charges on Feb 28/29, Apr 30, ... and is back on the 31st in months that have one.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from core import clock

MONTH = "month"
WEEK = "week"
DAY = "day"
UNITS = (MONTH, WEEK, DAY)
DEFAULT_NOTICE_LEAD_DAYS = 1
DEFAULT_RETRY_DAYS = (1, 3, 7)
# An unknown charge outcome is looked up again after these many minutes, then left to a person.
DEFAULT_REVIEW_BACKOFF_MINUTES = (5, 15, 60, 240, 1440)


@dataclass(frozen=True)
class Interval:
    """How often a plan charges: every `count` months, weeks or days."""

    unit: str = MONTH
    count: int = 1

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown interval unit {self.unit!r}; use one of {UNITS}")
        if self.count < 1:
            raise ValueError("interval count must be at least 1")

    @property
    def days(self) -> int | None:
        """Fixed length in days (weekly / daily plans); None for months."""
        return None if self.unit == MONTH else self.count * (7 if self.unit == WEEK else 1)


def last_day_of_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def anchored_day(year: int, month: int, anchor_day: int) -> date:
    """The anchor day in that month, or the month's last day when the month is shorter."""
    if not 1 <= anchor_day <= 31:
        raise ValueError("anchor day must be 1..31")
    return date(year, month, min(anchor_day, last_day_of_month(year, month)))


def add_months(day: date, months: int, anchor_day: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return anchored_day(index // 12, index % 12 + 1, anchor_day)


def first_charge_date(start: date, anchor_day: int, interval: Interval = Interval()) -> date:
    """The first charge on or after `start`: the anchor day of this month or the next (monthly plans);
    `start` itself for weekly / every-N-days plans."""
    if interval.unit != MONTH:
        return start
    candidate = anchored_day(start.year, start.month, anchor_day)
    return candidate if candidate >= start else add_months(start, 1, anchor_day)


def next_charge_date(current: date, anchor_day: int, interval: Interval = Interval()) -> date:
    """The charge date after `current` (itself a charge date): anchored, so it never drifts."""
    if interval.unit == MONTH:
        return add_months(current, interval.count, anchor_day)
    return current + timedelta(days=interval.days or 0)  # pragma: no mutate (equivalent: a week or day plan always has days >= 1)


def charge_date_on_or_after(
    current: date, day: date, anchor_day: int, interval: Interval = Interval()
) -> date:
    """Walk the schedule from the charge date `current` to the first charge date on or after `day`
    (resuming after a pause skips the periods that were paused)."""
    while current < day:
        current = next_charge_date(current, anchor_day, interval)
    return current


def schedule(first: date, anchor_day: int, interval: Interval, count: int) -> list[date]:
    """`count` consecutive charge dates starting at `first` (for tests and the page's preview)."""
    dates = [first]
    while len(dates) < count:
        dates.append(next_charge_date(dates[-1], anchor_day, interval))
    return dates


def notice_date(charge_date: date, lead_days: int = DEFAULT_NOTICE_LEAD_DAYS) -> date:
    """The day the customer is told about the charge (D-1 by default)."""
    if lead_days < 0:
        raise ValueError("notice lead time cannot be negative")
    return charge_date - timedelta(days=lead_days)


def notice_window(today: date, lead_days: int = DEFAULT_NOTICE_LEAD_DAYS) -> tuple[date, date]:
    """The charge dates whose notice goes out today: from tomorrow to `lead_days` ahead (with no
    lead, today's own). A charge in the window on its first day is told exactly the lead before."""
    if lead_days < 0:
        raise ValueError("notice lead time cannot be negative")
    return today + timedelta(days=min(lead_days, 1)), today + timedelta(days=lead_days)


def noticed_charge_date(charge_date: date, today: date, lead_days: int = DEFAULT_NOTICE_LEAD_DAYS) -> date:
    """The charge date that keeps the promise when the notice can only go out today (a resume, a
    change, a missed notice): the date itself when the lead still fits, else the first day it does."""
    return max(charge_date, today + timedelta(days=lead_days))


def notice_in_time(notice_day: date, charge_date: date, lead_days: int = DEFAULT_NOTICE_LEAD_DAYS) -> bool:
    """A notice sent on `notice_day` tells the customer at least the lead before the charge."""
    return notice_day <= charge_date - timedelta(days=lead_days)


def lead_words(lead_days: int) -> str:
    """How the screen names the lead: '결제 전날', '결제 3일 전', or '결제 당일'."""
    if lead_days == 0:
        return "결제 당일"
    return "결제 전날" if lead_days == 1 else f"결제 {lead_days}일 전"


def moved_words(charge_date: date, lead_days: int = DEFAULT_NOTICE_LEAD_DAYS) -> str:
    """What the 정기결제 screen says when a charge was moved so its notice goes out first."""
    return f"결제 예정일이 {korean_date(charge_date)}로 조정되었습니다: {lead_words(lead_days)} 안내를 보내기 위해"


def period_key(charge_date: date) -> str:
    """The period a charge belongs to, named by its scheduled charge date (used in idempotency keys)."""
    return charge_date.isoformat()


def retry_dates(
    charge_date: date, retry_days: tuple[int, ...] | list[int] = DEFAULT_RETRY_DAYS
) -> list[date]:
    """Dunning: the days a failed charge is tried again, as offsets from its due date, in order.

    An offset listed twice is one retry day (1, 3, 3, 7 -> 1, 3, 7): a day is tried once, and the
    retries and their notices are counted per day. Offsets are whole positive days; anything else
    (0, -1, 1.5, True) is a typo in the settings and is refused rather than guessed.
    """
    offsets: set[int] = set()
    for day in retry_days:
        if isinstance(day, bool) or (isinstance(day, float) and not day.is_integer()):
            raise ValueError(f"retry offsets must be whole days: {day!r}")
        offsets.add(int(day))
    if any(d <= 0 for d in offsets):
        raise ValueError("retry offsets must be positive days")
    return [charge_date + timedelta(days=d) for d in sorted(offsets)]


def review_delay(
    checks: int, backoff_minutes: tuple[int, ...] | list[int] = DEFAULT_REVIEW_BACKOFF_MINUTES
) -> timedelta | None:
    """How long after its `checks`-th unsettled lookup an unknown charge is looked up again; None once
    the ladder is spent (a person decides: the gateway will not tell us more by being asked again)."""
    if checks < 1:
        raise ValueError("checks start at 1")
    if checks > len(backoff_minutes):
        return None
    return timedelta(minutes=backoff_minutes[checks - 1])


def kst_instant(day: date, hour: int = 0, minute: int = 0) -> datetime:
    """The UTC instant of `day` at hh:mm in Korea."""
    return datetime.combine(day, time(hour, minute), tzinfo=clock.KST).astimezone(clock.UTC)


def when_words(charge_date: date, today: date) -> str:
    """'내일' for tomorrow, '오늘' for today, otherwise 'N일 후'."""
    days = (charge_date - today).days
    if days == 0:
        return "오늘"
    if days == 1:
        return "내일"
    return f"{days}일 후"


def korean_date(day: date) -> str:
    return f"{day.month}월 {day.day}일"
