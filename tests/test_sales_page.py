"""매출 page as the owner (AppTest): figures shown, filters, CSV downloads and every bad input."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core import analytics, clock
from core.accounts.actor import Actor
from core.models import Role
from core.money import format_krw
from tests.analytics_data import NOW, ShopWriter, build_shop, kst
from tests.ui_helpers import open_app, texts

PAGE = "pages/sales.py"
OWNER = Actor(id=None, name="사장님", role=Role.OWNER)  # the page reads only the session's actor


@pytest.fixture(autouse=True)
def _fresh_cache():
    import streamlit as st

    st.cache_data.clear()
    yield
    st.cache_data.clear()


def metric(at, label: str):  # type: ignore[no-untyped-def]
    return next(m for m in at.metric if m.label == label)


def set_range(at, first: date, last: date):  # type: ignore[no-untyped-def]
    at.selectbox(key="sal_preset").set_value("직접 선택").run()
    at.selectbox(key="sal_from").set_value(first)
    at.selectbox(key="sal_to").set_value(last).run()
    return at


def test_owner_sees_kpis_charts_and_downloads(engine: Engine) -> None:
    with clock.frozen(NOW):
        with Session(engine, expire_on_commit=False) as session:
            build_shop(session)
        analytics.rebuild_rollups(engine, date(2026, 3, 10))  # lagging: 10..15 March read live
        at = open_app(engine, OWNER, PAGE)
        assert not at.exception, at.exception
        set_range(at, date(2026, 2, 1), date(2026, 2, 28))
        assert not at.exception, at.exception
        with Session(engine) as session:
            summary = analytics.revenue_summary(session, date(2026, 2, 1), date(2026, 2, 28))
            value = analytics.customer_value(session)
            funnel = analytics.link_funnel(session, date(2026, 2, 1), date(2026, 2, 28))
        assert metric(at, "순매출").value == format_krw(summary.current.net)
        assert metric(at, "주문 수").value == f"{summary.current.orders:,}건"
        assert metric(at, "객단가 (AOV)").value == format_krw(summary.current.aov)
        assert metric(at, "LTV").value == format_krw(value.ltv)
        assert metric(at, "전환율").value == f"{funnel.conversion * 100:.1f}%"
        assert metric(at, "MRR").value.endswith("원")
        shown = texts(at)
        for heading in (
            "매출 추이",
            "인기 상품 (순매출)",
            "결제수단 비중",
            "결제 링크 전환",
            "코호트 재구매율과 LTV",
            "정기결제: MRR과 해지율",
            "누적 구매 상위 고객",
            "상품별 재구매 주기",
        ):
            assert heading in shown
        charts = at.get("vega_lite_chart")
        assert len(charts) >= 7
        downloads = at.get("download_button")
        assert len(downloads) == 9
        # Filters: a product and a method change the figures without errors.
        at.selectbox(key="sal_method").set_value("MONEY").run()
        assert not at.exception
        with Session(engine) as session:
            money = analytics.revenue_totals(session, date(2026, 2, 1), date(2026, 2, 28), method="MONEY")
        assert metric(at, "순매출").value == format_krw(money.net)
        at.selectbox(key="sal_method").set_value(None).run()
        at.selectbox(key="sal_product").set_value(0).run()  # the deleted-product bucket
        assert not at.exception
        at.selectbox(key="sal_grain").set_value("week").run()
        assert not at.exception


def test_empty_shop_range_without_orders_and_ten_years(sqlite_engine: Engine) -> None:
    with clock.frozen(NOW):
        at = open_app(sqlite_engine, OWNER, PAGE)
        assert not at.exception, at.exception
        assert metric(at, "순매출").value == "0원"
        assert metric(at, "객단가 (AOV)").value == "-"
        assert metric(at, "전환율").value == "-"
        assert metric(at, "LTV").value == "-"
        assert "선택한 기간에 주문이 없습니다." in texts(at)
        set_range(at, date(2016, 3, 16), date(2026, 3, 15))
        assert not at.exception, at.exception
        assert "기간이 길어 월별로 보여 드립니다." in texts(at)


def test_end_before_start_gets_a_clear_message(sqlite_engine: Engine) -> None:
    with clock.frozen(NOW):
        at = open_app(sqlite_engine, OWNER, PAGE)
        set_range(at, date(2026, 3, 10), date(2026, 3, 1))
        assert not at.exception
        assert [e.value for e in at.error] == ["종료일이 시작일보다 빠릅니다. 기간을 다시 선택해 주세요."]


def test_refunds_larger_than_sales_show_negative_net(sqlite_engine: Engine) -> None:
    with clock.frozen(NOW):
        with Session(sqlite_engine, expire_on_commit=False) as session:
            shop = build_shop(session)
        at = open_app(sqlite_engine, OWNER, PAGE)
        set_range(at, date(2026, 3, 3), date(2026, 3, 3))
        assert not at.exception
        with Session(sqlite_engine) as session:
            day = analytics.revenue_totals(session, date(2026, 3, 3), date(2026, 3, 3))
        assert day.net < 0
        assert metric(at, "순매출").value == format_krw(day.net)
        assert "환불액이 매출보다 많아" in texts(at)
        # New data shows up at once: the cache is keyed by the data version.
        with Session(sqlite_engine, expire_on_commit=False) as session:
            ShopWriter(session, first_key=50_000).sale(
                shop, shop.customer_ids[1], kst(2026, 3, 3, 20), [(shop.product_ids[0], 1, 500_000)]
            )
            session.commit()
        at.run()
        assert metric(at, "순매출").value == format_krw(day.net + 500_000)
        assert NOW - timedelta(days=1) < NOW
