"""Days are picked in Korean (issue 18): Streamlit 1.67's date_input calendar names months and weekdays
in English and has no locale, so 매출 › 직접 선택 (and every other date on the screens, ui/dates.py)
offers a Korean list of days instead. In a real browser at phone and desktop size, with the list
open, no English month or weekday word is on the page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.browser import browser_page, login, shot, staffed_server

pytestmark = pytest.mark.browser

MONTHS = "January February March April May June July August September October November December"
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday"
# Full names, their three-letter forms, and the two-letter weekday heads of a calendar grid.
ENGLISH_DATE_WORDS = re.compile(
    r"\b("
    + "|".join(
        [
            *MONTHS.split(),
            *(m[:3] for m in MONTHS.split()),
            *WEEKDAYS.split(),
            *(d[:3] for d in WEEKDAYS.split()),
            "Su",
            "Mo",
            "Tu",
            "We",
            "Th",
            "Fr",
            "Sa",
            "Today",
        ]
    )
    + r")\b"
)

KOREAN_DAY = re.compile(r"\d{4}년 \d{1,2}월 \d{1,2}일 \([월화수목금토일]\)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with staffed_server(tmp_path_factory.mktemp("browser_dates")) as base_url:
        yield base_url


def test_the_words_catch_a_calendar() -> None:
    """The check itself: it finds what Streamlit's calendar shows, and passes Korean days."""
    assert ENGLISH_DATE_WORDS.search("December 2026\nSu Mo Tu We Th Fr Sa")
    assert ENGLISH_DATE_WORDS.search("Choose date, Monday, November 30")
    assert not ENGLISH_DATE_WORDS.search("2026년 11월 30일 (월) · 오늘\n시작일\n종료일\n매출")


@pytest.mark.parametrize("size", [(390, 844), (1440, 900)], ids=["phone", "desktop"])
def test_custom_range_on_sales_has_no_english_month_or_weekday(server: str, size: tuple[int, int]) -> None:
    with browser_page(*size) as page:
        login(page, server, "owner1", "password-123")
        page.goto(f"{server}/sales")
        page.get_by_role("heading", name="매출").first.wait_for(timeout=30_000)
        page.get_by_label("기간").first.click()
        page.get_by_role("option", name="직접 선택").click()
        start = page.get_by_label("시작일")
        start.wait_for(timeout=30_000)
        start.click()  # the list of days is open, as a person picking the first day sees it
        listed = page.get_by_role("option").first
        listed.wait_for(timeout=10_000)
        shot(page, f"sales_custom_range_open_{size[0]}")
        # The server runs on the real clock: the days are checked by their form, not by a date.
        assert KOREAN_DAY.fullmatch(listed.inner_text().removesuffix(" · 오늘")), listed.inner_text()
        text = page.evaluate("() => document.body.innerText")
        assert not ENGLISH_DATE_WORDS.findall(text), ENGLISH_DATE_WORDS.findall(text)
        # A day picked from the list is the period's start (the page's own caption says so).
        page.get_by_role("option").nth(3).click()
        page.get_by_text("(KST) · 비교: 직전 같은 기간").wait_for(timeout=30_000)
        assert page.get_by_test_id("stException").count() == 0
        assert not ENGLISH_DATE_WORDS.findall(page.evaluate("() => document.body.innerText"))
