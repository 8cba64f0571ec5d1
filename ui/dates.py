"""A day picked from a Korean list instead of Streamlit's calendar.

st.date_input's calendar names months and weekdays in English and Streamlit 1.67 has no locale for it
(streamlit/streamlit#12699, #7865). A selectbox of days reads "2026년 11월 30일 (월)", filters as one
types ("11월 3"), opens as a plain list on a phone, and works inside a form (nothing depends on
another widget). The list runs from the day nearest today outward: newest first for a period in the
past, soonest first for one in the future.
"""

from __future__ import annotations

from datetime import date, timedelta

import streamlit as st

from core import clock

WEEKDAYS = "월화수목금토일"


def day_text(day: date, today: date | None = None) -> str:
    """A day as people write it, "2026년 11월 30일 (월)", with " · 오늘" on today."""
    text = f"{day.year}년 {day.month}월 {day.day}일 ({WEEKDAYS[day.weekday()]})"
    return f"{text} · 오늘" if day == (today or clock.today_kst()) else text


def days_between(first: date, last: date) -> list[date]:
    """Every day from first to last, the one nearest today first."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return days if first >= clock.today_kst() else days[::-1]


def day_select(
    label: str,
    value: date | None,
    *,
    key: str,
    first: date,
    last: date,
    empty: str | None = None,
    container=st,  # type: ignore[no-untyped-def]  # a column or st.sidebar, as st.date_input's caller had
) -> date | None:
    """One day between first and last (KST days). `empty` (e.g. "전체") is offered first and picks
    None. A value outside the list falls back to the nearest end, so a default never raises."""
    days = days_between(first, last)
    options: list[date | None] = [None, *days] if empty is not None else list(days)
    if value is not None:
        value = min(max(value, first), last)
    today = clock.today_kst()
    return container.selectbox(
        label,
        options,
        index=options.index(value) if value in options else 0,
        format_func=lambda d: empty if d is None else day_text(d, today),
        key=key,
    )
