"""매출 charts read without guessing (issue 18, part 4): Altair spec assertions.

Full product names on sorted horizontal bars, one row per item; every cohort row labelled
"2026년 11월 가입" with a legend; the period holding today drawn lighter and named 오늘(진행 중);
funnel stages in their own order.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from ui import sales_view


def _walk(spec: Any) -> list[dict[str, Any]]:
    """Every dict in a spec (encodings sit in layers and vconcats)."""
    found = []
    if isinstance(spec, dict):
        found.append(spec)
        for value in spec.values():
            found.extend(_walk(value))
    elif isinstance(spec, list):
        for value in spec:
            found.extend(_walk(value))
    return found


def _encodings(spec: dict[str, Any], channel: str) -> list[dict[str, Any]]:
    return [d["encoding"][channel] for d in _walk(spec) if isinstance(d.get("encoding"), dict)
            and channel in d["encoding"]]


def test_top_products_are_sorted_horizontal_bars_with_full_names_and_values() -> None:
    spec = sales_view._bar_chart("순매출", "상품", ("상품", "순매출표시"))
    names = _encodings(spec, "y")
    assert names and all(y["field"] == "상품" and y["type"] == "nominal" for y in names)
    assert all(y["sort"] == "-x" for y in names)  # biggest first
    axis = names[0]["axis"]
    assert axis["labelLimit"] >= 300 and axis["labelOverlap"] is False  # every bar named, not cut
    assert spec["height"] == {"step": 26}  # one 26 px row per product: labels cannot collide
    marks = [d["mark"]["type"] if isinstance(d["mark"], dict) else d["mark"] for d in _walk(spec) if "mark" in d]
    assert sorted(marks) == ["bar", "text"]  # the value is written at the bar's end
    text = _encodings(spec, "text")[0]
    assert text["format"] == ",d"


def test_funnel_keeps_stage_order_and_whole_number_ticks() -> None:
    spec = sales_view._bar_chart("링크 수", "단계", ("단계", "링크 수"), ranked=False)
    assert all(y.get("sort", "unset") is None for y in _encodings(spec, "y"))
    assert _encodings(spec, "x")[0]["axis"]["tickMinStep"] == 1  # no lone "0" tick on a flat strip


def test_cohort_heatmap_labels_every_row_and_has_a_legend() -> None:
    spec = sales_view._cohort_chart()
    y = _encodings(spec, "y")[0]
    assert y["axis"]["labelOverlap"] is False and y["field"] == "코호트"
    assert y["sort"] == {"field": "코호트순서", "order": "descending"}
    assert spec["height"] == {"step": 22}
    color = _encodings(spec, "color")[0]
    assert color["legend"]["format"] == ".0%" and color["legend"]["title"] == "재구매율"


def test_the_period_holding_today_is_lighter_and_named() -> None:
    spec = sales_view._revenue_chart("day")
    conditions = [o for o in _encodings(spec, "opacity") if "condition" in o]
    assert len(conditions) == 2  # the points above and the bars below
    assert all("진행 중" in json.dumps(o["condition"], ensure_ascii=False) for o in conditions)
    assert all(o["condition"]["value"] < o["value"] for o in conditions)
    texts = _encodings(spec, "text")
    assert texts and texts[0]["field"] == "기간표시"


@pytest.mark.parametrize(
    ("period", "grain", "shown"),
    [(date(2026, 11, 20), "day", "오늘(진행 중)"), (date(2026, 11, 19), "day", "11월 19일"),
     (date(2026, 11, 16), "week", "11월 3주(진행 중)"), (date(2026, 11, 30), "week", "12월 1주"),
     (date(2026, 11, 1), "month", "2026년 11월(진행 중)"), (date(2026, 10, 1), "month", "2026년 10월")],
)
def test_period_names(period: date, grain: str, shown: str) -> None:
    assert sales_view._period_text(period, grain, date(2026, 11, 20)) == shown


def test_sales_page_has_korean_presets_a_caption_per_chart_and_the_ltv_definition(sqlite_engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    import streamlit as st

    from tests.ui_helpers import open_app

    st.cache_data.clear()
    at = open_app(sqlite_engine, sqlite_actors["owner"], "pages/sales.py")
    assert not at.exception, at.exception
    assert at.selectbox(key="sal_preset").options == [
        "오늘", "어제", "최근 7일", "최근 30일", "이번 주", "이번 달", "지난 달", "올해", "직접 선택"]
    assert not [s for s in at.selectbox if s.key == "sal_from"]  # the day lists only for 직접 선택
    captions = [c.value for c in at.caption]
    for start in ("기간별 순매출", "순매출이 큰 상품", "많이 팔린 상품", "기간 총매출을", "보낸 결제 링크가",
                  "LTV(고객 생애 가치) = ", "행: 첫 구매 월", "월별 정기결제"):
        assert any(c.startswith(start) for c in captions), start
    assert "LTV (고객 1명당)" in [m.label for m in at.metric]
    at.selectbox(key="sal_preset").set_value("지난 달").run()
    assert not at.exception, at.exception
