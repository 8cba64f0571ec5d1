"""The one source of "now" for all of core, so the worker's --now and the tests can move time.

Stored instants are timezone-aware UTC; people see and reason in Asia/Seoul (KST, no DST).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

KST = ZoneInfo("Asia/Seoul")
UTC = UTC

_frozen: datetime | None = None


def now() -> datetime:
    """Current instant in UTC (aware); the frozen instant while one is set."""
    return _frozen if _frozen is not None else datetime.now(UTC)


def set_now(instant: datetime | None) -> None:
    """Freeze the clock at `instant` (aware) or release it with None."""
    global _frozen
    if instant is not None and instant.tzinfo is None:
        raise ValueError("set_now needs a timezone-aware datetime")
    _frozen = instant.astimezone(UTC) if instant is not None else None


@contextlib.contextmanager
def frozen(instant: datetime) -> Iterator[datetime]:
    previous = _frozen
    set_now(instant)
    try:
        yield now()
    finally:
        set_now(previous)


def parse_instant(text: str) -> datetime:
    """ISO-8601 with offset; a naive value is taken as KST (how staff think)."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=KST)
    return value.astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """Aware UTC from a stored value; SQLite hands back naive datetimes that are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_kst(value: datetime) -> datetime:
    return as_utc(value).astimezone(KST)


def today_kst(at: datetime | None = None) -> date:
    return to_kst(at or now()).date()


def kst_midnight(day: date) -> datetime:
    """The UTC instant at which `day` begins in Korea."""
    return datetime.combine(day, time(0), tzinfo=KST).astimezone(UTC)


def kst_day_range(first: date, last: date) -> tuple[datetime, datetime]:
    """[start, end) in UTC covering the KST days first..last inclusive."""
    return kst_midnight(first), kst_midnight(last + timedelta(days=1))


def format_kst(value: datetime | None, with_seconds: bool = False) -> str:
    if value is None:
        return "-"
    return to_kst(value).strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")
