"""Korean words for codes (ui/labels.py): ISO weeks, date presets, segment rules, worker counts."""

from __future__ import annotations

from datetime import date

import pytest

from ui import labels


@pytest.mark.parametrize(
    ("year", "week", "shown"),
    [(2026, 49, "12월 1주"),  # Mon 11/30..Sun 12/6: its Thursday is 12/3
     (2026, 48, "11월 4주"), (2026, 46, "11월 2주"),
     (2026, 53, "12월 5주"),  # 2026 has 53 ISO weeks: Thu 12/31
     (2027, 1, "1월 1주"),  # Mon 2027-01-04
     (2020, 53, "12월 5주"), (2021, 1, "1월 1주")],  # ISO year 2020 ends Sun 2021-01-03
)
def test_iso_weeks_read_as_month_and_week(year: int, week: int, shown: str) -> None:
    assert labels.week_label(year, week) == shown
    assert labels.iso_week_text(f"{year}-W{week:02d}") == shown


TODAY = date(2026, 12, 2)  # a Wednesday


@pytest.mark.parametrize(
    ("preset", "first", "last"),
    [("오늘", date(2026, 12, 2), date(2026, 12, 2)), ("어제", date(2026, 12, 1), date(2026, 12, 1)),
     ("최근 7일", date(2026, 11, 26), date(2026, 12, 2)), ("이번 주", date(2026, 11, 30), date(2026, 12, 2)),
     ("이번 달", date(2026, 12, 1), date(2026, 12, 2)), ("지난 달", date(2026, 11, 1), date(2026, 11, 30)),
     ("올해", date(2026, 1, 1), date(2026, 12, 2))],
)
def test_date_presets(preset: str, first: date, last: date) -> None:
    assert labels.preset_range(preset, TODAY) == (first, last)
    assert preset in labels.DATE_PRESETS


def test_date_presets_at_year_and_month_edges() -> None:
    assert labels.preset_range("지난 달", date(2027, 1, 1)) == (date(2026, 12, 1), date(2026, 12, 31))
    assert labels.preset_range("어제", date(2027, 1, 1)) == (date(2026, 12, 31), date(2026, 12, 31))
    assert labels.preset_range("이번 주", date(2026, 11, 30)) == (date(2026, 11, 30), date(2026, 11, 30))


@pytest.mark.parametrize(
    ("rule", "sentence"),
    [({"type": "spent", "min_amount": 300000, "days": 90}, "최근 90일 30만원 이상 구매"),
     ({"type": "spent", "min_amount": 55500, "days": 30}, "최근 30일 55,500원 이상 구매"),
     ({"type": "channel_friend", "value": False}, "채널 친구 아님"),
     ({"type": "dormant", "days": 180, "include_never": True}, "180일간 주문 없음 (주문한 적 없는 고객 포함)"),
     ({"type": "bought", "product_ids": [3], "days": 30}, "최근 30일 원두 구매"),
     ({"type": "bought", "category": "드립백", "days": 14}, "최근 14일 '드립백' 분류 구매"),
     ({"type": "subscription", "statuses": ["active", "past_due"]}, "정기결제 이용 중, 결제 실패"),
     ({"type": "order_count", "min": 2}, "주문 2회 이상"), ({"type": "order_count", "min": 2, "max": 5}, "주문 2~5회"),
     ({"type": "repurchase_due", "within_days": 7}, "7일 안에 재구매 시기 도래"),
     ({"type": "first_purchase", "days": 30}, "최근 30일 안에 첫 구매")],
)
def test_segment_rules_read_as_sentences(rule: dict, sentence: str) -> None:  # type: ignore[type-arg]
    assert labels.rule_sentence(rule, {3: "원두"}) == sentence


def test_worker_counts_and_names() -> None:
    assert labels.job_label("double_charge_sentinel") == "이중 결제 감시"
    assert labels.job_counts_sentence({"found": 0, "opened": 0}) == "처리할 일 없음"
    assert labels.job_counts_sentence({"found": 2, "opened": 1, "mystery": 9}) == "발견 2건, 문의 생성 1건, 기타 9건"
    # The 매출 rollup's run: its counts in words, its timing (ms) never summed into "기타 N건".
    assert labels.job_counts_sentence(
        {"rebuilt": 0, "repaired_days": 3, "repaired_customers": 40, "orders": 1_200, "days": 2, "chunks": 1,
         "longest_chunk_ms": 997}
    ) == "다시 집계한 날 3건, 다시 집계한 고객 40건, 집계한 주문 1,200건, 집계한 날 2건, 집계 단계 1건"
    from core.jobs import JOBS

    assert all(spec.id in labels.JOB_LABELS for spec in JOBS)


@pytest.mark.parametrize(
    ("code", "message", "shown"),
    [("INSUFFICIENT_FUNDS", None, "잔액 부족"), ("INSUFFICIENT_FUNDS", "잔액 부족", "잔액 부족"),
     ("SOMETHING_NEW", None, "결제 실패 (대행사 사유)"), (None, None, "-"), ("empty", "empty", "응답 없음"),
     ("X", "카드 한도 초과", "카드 한도 초과")],
)
def test_gateway_reasons_never_show_the_code(code: str | None, message: str | None, shown: str) -> None:
    assert labels.reason_label(code, message) == shown


def test_template_names_come_from_the_default_templates() -> None:
    assert labels.template_label("review_request") == "리뷰 요청"
    assert labels.template_label(None) == "캠페인"
    assert labels.template_label("my_custom") == "사용자 템플릿"
