"""The 매출 screen (pages/sales.py runs `render()`): KPI cards, charts, tables and CSV downloads.

It lives in a module, not in the page script, so Streamlit compiles it and builds its cached
functions once per process, not on every rerun. Figures come from core.analytics and are cached
under `analytics.data_version` (a cheap fingerprint of the data): a rerun without new data is a
cache hit, and new data is never hidden. Chart data and tables are turned into Arrow once, inside
the cache, so a warm rerun only sends bytes.
"""

from __future__ import annotations

import copy
import functools
from datetime import date, timedelta
from typing import Any

import altair as alt
import pyarrow as pa
import streamlit as st

import ui
from core import analytics, clock
from core.customers import vip
from core.db import session_scope
from core.errors import ValidationFailed
from core.money import format_krw
from core.rewards import queries as reward_queries
from core.safe_text import csv_text
from ui import dates
from ui.labels import DATE_PRESETS, preset_range, week_label, with_vip
from ui.tables import show_rows

GRAIN_LABELS = {"day": "일별", "week": "주별", "month": "월별"}
METHOD_CHOICES = [None, "CARD", "MONEY", analytics.OTHER_METHOD]
MAX_DAILY_POINTS = 400
DATA_NAME = "sal_data"
PARTIAL = "진행 중"  # 1 on the period that holds today (KST): its figures are not final
LABEL_LIMIT = 360  # px: a full product name ("싱글오리진 원두 200g 에티오피아") is never cut
CUSTOM_RANGE = "직접 선택"
FIRST_YEARS_BACK = 10  # 직접 선택 offers the days of the last ten years (3,660 in one searchable list)
TOP_CUSTOMERS = "누적 구매 상위 고객"  # not "VIP 고객": VIP is the owner's rule on 설정 (core/customers/vip.py)
RANGE_CHOICES = [*DATE_PRESETS[:3], "최근 30일", *DATE_PRESETS[3:], CUSTOM_RANGE]


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def delta_text(value: float | None) -> str | None:
    return None if value is None else f"{value * 100:+.1f}%"


def arrow_bytes(rows: list[dict[str, Any]]) -> bytes:
    """Rows as Arrow IPC stream bytes: what Streamlit sends for chart data, done once in the cache."""
    table = pa.Table.from_pylist(rows)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def filled(template: dict[str, Any], rows: list[dict[str, Any]], height: int | None = None) -> dict[str, Any]:
    """A chart template (built once per process with Altair) with this run's rows as Arrow bytes."""
    spec = copy.deepcopy(template)
    spec["datasets"] = {DATA_NAME: arrow_bytes(rows)}
    if height is not None:
        spec["height"] = height
    return spec


def download_bytes(rows: list[dict[str, Any]]) -> bytes:
    """The CSV behind a chart or table, without the display-only columns."""
    return csv_bytes([{k: v for k, v in row.items() if not k.endswith("표시")} for row in rows])


def csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    """CSV with a BOM so Excel opens Korean headers correctly."""
    if not rows:
        return "".encode("utf-8-sig")
    header = list(rows[0])
    return csv_text(header, ([row.get(key) for key in header] for row in rows)).encode("utf-8-sig")


@functools.lru_cache(maxsize=8)
def _revenue_chart(grain: str) -> dict[str, Any]:
    """Net revenue (detail) over orders (overview) sharing one date brush."""
    data = alt.Data(name=DATA_NAME)
    brush = alt.selection_interval(encodings=["x"], name="sal_brush")
    unit = {"day": "yearmonthdate", "week": "yearmonthdate", "month": "yearmonth"}[grain]
    date_axis = alt.Axis(format="%Y년 %m월" if grain == "month" else "%m월 %d일")
    x = alt.X(f"{unit}(기간):T", title="기간", axis=date_axis)
    tooltip = [
        alt.Tooltip("기간표시:N", title="기간"),
        alt.Tooltip("총매출표시:N", title="총매출"),
        alt.Tooltip("환불표시:N", title="환불"),
        alt.Tooltip("순매출표시:N", title="순매출"),
        alt.Tooltip("주문 수:Q", title="주문 수"),
        alt.Tooltip("객단가표시:N", title="객단가"),
    ]
    # The period holding today is still filling up: drawn lighter and named "오늘(진행 중)", so
    # its low figure does not read as a collapse.
    partial = alt.datum[PARTIAL] == 1
    detail_x = alt.X(f"{unit}(기간):T", title=None, scale=alt.Scale(domain=brush), axis=date_axis)
    area = (
        alt.Chart(data)
        .mark_area(opacity=0.35, line=True)
        .encode(x=detail_x, y=alt.Y("순매출:Q", title="순매출 (원)", axis=alt.Axis(format=",d")), tooltip=tooltip)
    )
    points = (
        alt.Chart(data)
        .mark_point(filled=True, size=40)
        .encode(
            x=detail_x,
            y=alt.Y("순매출:Q"),
            opacity=alt.condition(partial, alt.value(0.35), alt.value(1.0)),
            tooltip=tooltip,
        )
    )
    today_label = (
        alt.Chart(data)
        .transform_filter(partial)
        .mark_text(dy=-12, fontSize=11, color="#8a6d00")
        .encode(x=detail_x, y=alt.Y("순매출:Q"), text=alt.Text("기간표시:N"))
    )
    detail = alt.layer(area, points, today_label).properties(height=220, width="container")
    overview = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("주문 수:Q", title="주문 수"),
            opacity=alt.condition(partial, alt.value(0.35), alt.value(1.0)),
            tooltip=tooltip,
        )
        .add_params(brush)
        .properties(height=90, width="container", title="아래에서 구간을 드래그하면 위 차트가 확대됩니다")
    )
    return alt.vconcat(detail, overview).to_dict(validate=False)


@functools.lru_cache(maxsize=16)
def _bar_chart(x: str, y: str, tooltip: tuple[str, ...], *, ranked: bool = True) -> dict[str, Any]:
    """Horizontal bars, one labelled row per item with its full name and its value at the bar's end.

    ranked=True sorts by value (top products); False keeps the data's order (funnel stages).
    """
    data = alt.Data(name=DATA_NAME)
    names = alt.Y(
        f"{y}:N",
        sort="-x" if ranked else None,
        title=None,
        axis=alt.Axis(labelLimit=LABEL_LIMIT, labelOverlap=False, labelFontSize=12),
    )
    values = alt.X(f"{x}:Q", title=x, axis=alt.Axis(format=",d", tickMinStep=1))
    base = alt.Chart(data).encode(y=names, x=values, tooltip=[alt.Tooltip(f"{t}:N") for t in tooltip])
    bars = base.mark_bar()
    figures = base.mark_text(align="left", dx=4, fontSize=11).encode(text=alt.Text(f"{x}:Q", format=",d"))
    return (
        alt.layer(bars, figures)
        .properties(height=alt.Step(26), width="container")
        .to_dict(validate=False)
    )


@functools.lru_cache(maxsize=1)
def _method_chart() -> dict[str, Any]:
    return (
        alt.Chart(alt.Data(name=DATA_NAME))
        .mark_arc(innerRadius=50)
        .encode(
            theta=alt.Theta("총매출:Q"),
            color=alt.Color("결제수단:N", title="결제수단"),
            tooltip=[
                alt.Tooltip("결제수단:N"),
                alt.Tooltip("총매출표시:N", title="총매출"),
                alt.Tooltip("비중:N"),
                alt.Tooltip("주문 수:Q"),
            ],
        )
        .properties(height=240, width="container")
        .to_dict(validate=False)
    )


@functools.lru_cache(maxsize=1)
def _cohort_chart() -> dict[str, Any]:
    return (
        alt.Chart(alt.Data(name=DATA_NAME))
        .mark_rect()
        .encode(
            x=alt.X("개월 후:O", title="첫 구매 후 개월", axis=alt.Axis(labelAngle=0)),
            y=alt.Y(
                "코호트:O",
                title=None,
                sort=alt.EncodingSortField("코호트순서", order="descending"),
                axis=alt.Axis(labelOverlap=False, labelLimit=LABEL_LIMIT),
            ),
            color=alt.Color(
                "재구매율:Q",
                title="재구매율",
                scale=alt.Scale(scheme="blues", domain=[0, 1]),
                legend=alt.Legend(format=".0%", orient="right", title="재구매율"),
            ),
            tooltip=[
                alt.Tooltip("코호트:O"),
                alt.Tooltip("개월 후:O"),
                alt.Tooltip("재구매율표시:N", title="재구매율"),
                alt.Tooltip("고객 수:Q"),
            ],
        )
        .properties(height=alt.Step(22), width="container")
        .to_dict(validate=False)
    )


@functools.lru_cache(maxsize=1)
def _subscription_chart() -> dict[str, Any]:
    """MRR bars over churn / failed-charge rates, one month brush for both."""
    data = alt.Data(name=DATA_NAME)
    brush = alt.selection_interval(encodings=["x"], name="sal_sub_brush")
    tooltip = [
        alt.Tooltip("월:N"),
        alt.Tooltip("MRR표시:N", title="MRR"),
        alt.Tooltip("이용 중:Q"),
        alt.Tooltip("신규:Q"),
        alt.Tooltip("해지:Q"),
        alt.Tooltip("해지율표시:N", title="해지율"),
        alt.Tooltip("결제 실패율표시:N", title="결제 실패율"),
    ]
    mrr = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("월:O", title=None),
            y=alt.Y("MRR:Q", title="MRR (원)", axis=alt.Axis(format=",d")),
            opacity=alt.condition(brush, alt.value(1.0), alt.value(0.35)),
            tooltip=tooltip,
        )
        .add_params(brush)
        .properties(height=180, width="container")
    )
    rates = (
        alt.Chart(data)
        .transform_fold(["해지율", "결제 실패율"], as_=["지표", "비율"])
        .mark_line(point=True)
        .encode(
            x=alt.X("월:O", title="월"),
            y=alt.Y("비율:Q", title="비율", axis=alt.Axis(format=".0%")),
            color=alt.Color("지표:N", title=None),
            opacity=alt.condition(brush, alt.value(1.0), alt.value(0.35)),
            tooltip=tooltip,
        )
        .properties(height=140, width="container")
    )
    return alt.vconcat(mrr, rates).to_dict(validate=False)


@st.cache_data(show_spinner=False, max_entries=64)
def _figures(
    version: tuple[Any, ...], first: date, last: date, grain: str, product_id: int | None, method: str | None,
    vip_rule: vip.VipRule | None = None,
) -> dict[str, Any]:
    """Everything the page shows for one choice of filters, computed once per data version."""
    del version  # the cache key: new data makes a new entry
    with session_scope(ui.engine()) as session:
        summary = analytics.revenue_summary(session, first, last, product_id, method)
        series = analytics.revenue_series(session, first, last, grain, product_id, method)
        prev_first, prev_last = summary.previous_first, summary.previous_last
        funnel = analytics.link_funnel(session, first, last, product_id)
        funnel_prev = analytics.link_funnel(session, prev_first, prev_last, product_id)
        products = analytics.top_products(session, first, last, by="gross", limit=10, method=method)
        products_by_units = analytics.top_products(session, first, last, by="units", limit=10, method=method)
        methods = analytics.method_mix(session, first, last, product_id)
        value = analytics.customer_value(session)
        cohort_rows = analytics.cohorts(session, since=analytics.add_months(analytics.month_start(last), -11))
        vips = analytics.vip_customers(session, limit=10)
        # The top spenders are not all VIPs: VIP is the owner's rule on 설정 (`vip_rule` keys the cache).
        marked = vip.vip_ids(session, [v.customer_id for v in vips]) if vip_rule is not None else set()
        intervals = analytics.product_repurchase_intervals(session)
        months = analytics.subscription_months(
            session, analytics.add_months(analytics.month_start(last), -11), last
        )
        product_names = {pid: name for pid, name, _ in _product_options(session)}

    today = clock.today_kst()
    revenue_rows = [
        {
            "기간": p.period.isoformat(),
            "기간표시": _period_text(p.period, grain, today),
            PARTIAL: int(_holds_today(p.period, grain, today)),
            "총매출": p.gross,
            "환불": p.refunds,
            "순매출": p.net,
            "주문 수": p.orders,
            "객단가": p.aov or 0,
            "총매출표시": format_krw(p.gross),
            "환불표시": format_krw(p.refunds),
            "순매출표시": format_krw(p.net),
            "객단가표시": format_krw(p.aov),
        }
        for p in series
    ]
    product_rows = [
        {
            "상품": r.name,
            "순매출": r.net,
            "총매출": r.gross,
            "환불": r.refunds,
            "판매 수량": r.units,
            "주문 수": r.orders,
            "순매출표시": format_krw(r.net),
        }
        for r in products
    ]
    unit_rows = [
        {"상품": r.name, "판매 수량": r.units, "순매출표시": format_krw(r.net)} for r in products_by_units
    ]
    method_rows = [
        {
            "결제수단": r.label,
            "총매출": r.gross,
            "주문 수": r.orders,
            "비중": pct(r.share),
            "총매출표시": format_krw(r.gross),
        }
        for r in methods
    ]
    funnel_rows = [
        {"단계": label, "링크 수": count, "발송 대비": pct(share)}
        for _, label, count, share in funnel.stages()
    ]
    cohort_cells = [
        {
            "코호트": f"{c.cohort.year}년 {c.cohort.month}월 가입",
            "코호트순서": c.cohort.isoformat(),
            "개월 후": k,
            "재구매율": share or 0.0,
            "재구매율표시": pct(share),
            "고객 수": c.customers,
        }
        for c in cohort_rows
        for k, share in enumerate(c.retention)
    ]
    cohort_table = [
        {
            "첫 구매 월": c.cohort.strftime("%Y-%m"),
            "고객 수": c.customers,
            "순매출": c.net,
            "LTV": c.ltv or 0,
            **{f"{k}개월 후": pct(s, 0) for k, s in enumerate(c.retention) if k <= 12},
        }
        for c in cohort_rows
    ]
    sub_rows = [
        {
            "월": m.month.strftime("%Y-%m"),
            "MRR": m.mrr,
            "이용 중": m.active,
            "신규": m.new,
            "해지": m.churned,
            "해지율": m.churn_rate or 0.0,
            "결제 실패율": m.failed_charge_rate or 0.0,
            "결제": m.charges,
            "결제 실패": m.failed_charges,
            "MRR표시": format_krw(m.mrr),
            "해지율표시": pct(m.churn_rate),
            "결제 실패율표시": pct(m.failed_charge_rate),
        }
        for m in months
    ]
    vip_rows = [
        {"고객": with_vip(v.name, v.customer_id in marked), "주문 수": v.orders, "순매출": v.net,
         "최근 구매": clock.format_kst(v.last_paid_at)}
        for v in vips
    ]
    interval_rows = sorted(
        (
            {
                "상품": product_names.get(pid, analytics.DELETED_PRODUCT_NAME),
                "재구매 주기(일, 중앙값)": round(m, 1),
                "재구매 횟수": n,
            }
            for pid, (m, n) in intervals.items()
        ),
        key=lambda r: -r["재구매 횟수"],
    )[:20]
    mrr_now = months[-1] if months else None
    mrr_prev = months[-2] if len(months) > 1 else None
    return {
        "summary": summary,
        "funnel": funnel,
        "funnel_prev": funnel_prev,
        "value": value,
        "mrr": (mrr_now.mrr if mrr_now else 0, mrr_prev.mrr if mrr_prev else None),
        "revenue": _pack(revenue_rows, filled(_revenue_chart(grain), revenue_rows) if revenue_rows else None),
        "products": _pack(
            product_rows,
            filled(
                _bar_chart("순매출", "상품", ("상품", "순매출표시", "판매 수량", "주문 수")),
                product_rows,
            ),
        ),
        "units": _pack(
            unit_rows,
            filled(
                _bar_chart("판매 수량", "상품", ("상품", "판매 수량", "순매출표시")),
                unit_rows,
            ),
        ),
        "methods": _pack(method_rows, filled(_method_chart(), method_rows)),
        "funnel_rows": _pack(
            funnel_rows,
            filled(
                _bar_chart("링크 수", "단계", ("단계", "링크 수", "발송 대비"), ranked=False), funnel_rows
            )
            if funnel.sent
            else None,
        ),
        "cohorts": _pack(
            cohort_table,
            filled(_cohort_chart(), cohort_cells)
            if cohort_cells
            else None,
        ),
        "subscriptions": _pack(
            sub_rows,
            filled(_subscription_chart(), sub_rows)
            if any(r["MRR"] or r["신규"] or r["해지"] for r in sub_rows)
            else None,
        ),
        "vips": _pack_table(vip_rows, [{**r, "순매출": format_krw(r["순매출"])} for r in vip_rows]),
        "intervals": _pack_table(interval_rows, interval_rows),
    }


def _holds_today(period: date, grain: str, today: date) -> bool:
    """Whether the period starting `period` contains today (its figures still grow)."""
    if grain == "day":
        return period == today
    if grain == "week":
        return period <= today < period + timedelta(days=7)
    return (period.year, period.month) == (today.year, today.month)


def _period_text(period: date, grain: str, today: date) -> str:
    """How a period is named on the chart: 11월 20일 / 12월 1주 / 2026년 11월, and 오늘(진행 중)."""
    if grain == "day":
        text = "오늘" if period == today else f"{period.month}월 {period.day}일"
    elif grain == "week":
        iso = period.isocalendar()
        text = week_label(iso.year, iso.week)
    else:
        text = f"{period.year}년 {period.month}월"
    return f"{text}(진행 중)" if _holds_today(period, grain, today) else text


def _pack(rows: list[dict[str, Any]], spec: dict[str, Any] | None) -> dict[str, Any]:
    """What the page needs of one chart: its spec with Arrow data, and the CSV behind it."""
    return {"count": len(rows), "spec": spec if rows else None, "csv": download_bytes(rows)}


def _pack_table(rows: list[dict[str, Any]], shown: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "count": len(rows),
        "table": pa.Table.from_pylist(shown) if shown else None,
        "csv": download_bytes(rows),
    }


def _product_options(session: Any) -> list[tuple[int, str, bool]]:
    from sqlalchemy import text

    rows = session.execute(text("SELECT id, name, deleted_at FROM product ORDER BY name, id")).all()
    options = [(pid, name, deleted_at is not None) for pid, name, deleted_at in rows]
    return [*options, (analytics.DELETED_PRODUCT_ID, analytics.DELETED_PRODUCT_NAME, True)]


@st.cache_data(show_spinner=False, max_entries=8)
def _filter_options(version: tuple[Any, ...]) -> list[tuple[int, str, bool]]:
    del version
    with session_scope(ui.engine()) as session:
        return _product_options(session)


def _download(label: str, packed: dict[str, Any], name: str, key: str) -> None:
    st.download_button(
        f"{label} CSV", packed["csv"], file_name=name, mime="text/csv", key=key, disabled=not packed["count"]
    )


def _chart(packed: dict[str, Any], empty: str, key: str) -> None:
    if packed["spec"] is None:
        st.info(empty)
        return
    st.vega_lite_chart(packed["spec"], width="stretch", key=key)


def _table(packed: dict[str, Any], empty: str, key: str) -> None:
    if packed["table"] is None:
        st.info(empty)
        return
    st.dataframe(packed["table"], hide_index=True, key=key)


def render() -> None:
    """Draw the whole screen for the logged-in owner."""
    ui.current_actor()
    st.title("매출")

    with session_scope(ui.engine()) as _session:
        version = analytics.data_version(_session)
        cov = analytics.coverage(_session)
        vip_rule = vip.load(_session)

    today = clock.today_kst()
    filters = st.columns([2, 1, 2, 1])
    preset = filters[0].selectbox("기간", RANGE_CHOICES, index=RANGE_CHOICES.index("최근 30일"), key="sal_preset")
    if preset == CUSTOM_RANGE:
        since = today - timedelta(days=366 * FIRST_YEARS_BACK)
        picked = (
            dates.day_select(
                "시작일", today - timedelta(days=29), key="sal_from", first=since, last=today, container=filters[0]
            ),
            dates.day_select("종료일", today, key="sal_to", first=since, last=today, container=filters[0]),
        )
    elif preset == "최근 30일":
        picked = (today - timedelta(days=29), today)
    else:
        picked = preset_range(preset, today)
    grain = filters[1].selectbox("단위", list(GRAIN_LABELS), format_func=GRAIN_LABELS.get, key="sal_grain")
    options = _filter_options(version)
    names = {pid: (f"{name} (삭제됨)" if deleted and pid else name) for pid, name, deleted in options}
    product_id = filters[2].selectbox(
        "상품",
        [None, *names],
        format_func=lambda p: "전체 상품" if p is None else names[p],
        key="sal_product",
    )
    method = filters[3].selectbox(
        "결제수단",
        METHOD_CHOICES,
        format_func=lambda m: "전체" if m is None else analytics.METHOD_LABELS[m],
        key="sal_method",
    )

    if not isinstance(picked, (tuple, list)) or len(picked) != 2:
        st.info("기간의 시작일과 종료일을 모두 선택하세요.")
        return  # not st.stop(): it would also drop a click queued while this run was going
    first, last = picked
    try:
        analytics.check_range(first, last)
    except ValidationFailed as exc:
        st.error(str(exc))
        return
    if grain == "day" and (last - first).days + 1 > MAX_DAILY_POINTS:
        grain = "month"
        st.caption("기간이 길어 월별로 보여 드립니다.")

    figures = _figures(version, first, last, grain, product_id, method, vip_rule)
    summary: analytics.RevenueSummary = figures["summary"]
    current = summary.current
    st.caption(
        f"{first.isoformat()} ~ {last.isoformat()} (KST) · 비교: 직전 같은 기간 "
        f"{summary.previous_first.isoformat()} ~ {summary.previous_last.isoformat()}"
    )

    # Two rows of three: amounts like 72,597,000원 fit without being cut off.
    kpis = st.columns(3) + st.columns(3)
    kpis[0].metric(
        "순매출",
        format_krw(current.net),
        delta_text(summary.delta("net")),
        help=f"총매출 {format_krw(current.gross)} − 환불 {format_krw(current.refunds)}",
    )
    kpis[1].metric("주문 수", f"{current.orders:,}건", delta_text(summary.delta("orders")))
    kpis[2].metric(
        "객단가 (AOV)", format_krw(current.aov), delta_text(summary.delta("aov")), help="총매출 ÷ 주문 수"
    )
    funnel: analytics.Funnel = figures["funnel"]
    funnel_prev: analytics.Funnel = figures["funnel_prev"]
    conversion_delta = (
        None
        if funnel.conversion is None or funnel_prev.conversion is None
        else f"{(funnel.conversion - funnel_prev.conversion) * 100:+.1f}%p"
    )
    kpis[3].metric(
        "전환율",
        pct(funnel.conversion),
        conversion_delta,
        help=f"결제 링크 {funnel.sent:,}건 발송 중 {funnel.paid:,}건 결제",
    )
    value: analytics.CustomerValue = figures["value"]
    kpis[4].metric("LTV", format_krw(value.ltv), help="고객 1명당 누적 순매출 (전체 기간, 필터 미적용)")
    mrr_now, mrr_prev = figures["mrr"]
    kpis[5].metric(
        "MRR",
        format_krw(mrr_now),
        delta_text(analytics.change(mrr_now, mrr_prev)),
        help="월 환산 정기결제 매출 (전월 대비)",
    )
    st.caption(
        f"재구매율 {pct(value.repeat_rate)} · 구매 고객 {value.customers:,}명 · "
        + (
            "집계 테이블 없이 실시간으로 계산했습니다."
            if cov.until is None
            else f"{clock.format_kst(cov.until)} 이전은 집계, 이후는 실시간으로 계산했습니다."
        )
    )
    if current.net < 0:
        st.warning("이 기간은 환불액이 매출보다 많아 순매출이 음수입니다.")

    st.subheader("매출 추이")
    st.caption("기간별 순매출(위)과 주문 수(아래). 오늘이 든 기간은 아직 진행 중이라 옅게 표시합니다.")
    if current.orders == 0 and current.refunds == 0:
        st.info("선택한 기간에 주문이 없습니다.")
    else:
        _chart(figures["revenue"], "선택한 기간에 주문이 없습니다.", "sal_chart_revenue")
    _download("매출 추이", figures["revenue"], "sales_revenue.csv", "sal_csv_revenue")

    left, right = st.columns(2)
    with left:
        st.subheader("인기 상품 (순매출)")
        st.caption("순매출이 큰 상품 10개, 큰 순서대로. 막대 끝 숫자가 순매출(원)입니다.")
        _chart(figures["products"], "판매된 상품이 없습니다.", "sal_chart_products")
        _download("인기 상품", figures["products"], "sales_top_products.csv", "sal_csv_products")
        st.subheader("인기 상품 (판매 수량)")
        st.caption("많이 팔린 상품 10개, 많은 순서대로. 막대 끝 숫자가 판매 수량입니다.")
        _chart(figures["units"], "판매된 상품이 없습니다.", "sal_chart_units")
        _download("판매 수량", figures["units"], "sales_top_units.csv", "sal_csv_units")
    with right:
        st.subheader("결제수단 비중")
        st.caption("기간 총매출을 결제수단별로 나눈 비중입니다.")
        _chart(figures["methods"], "결제 내역이 없습니다.", "sal_chart_methods")
        _download("결제수단", figures["methods"], "sales_methods.csv", "sal_csv_methods")
        st.subheader("결제 링크 전환")
        st.caption("보낸 결제 링크가 열람, 수단 선택, 결제 완료까지 몇 건 이어졌는지 단계 순서로 보여 줍니다.")
        _chart(figures["funnel_rows"], "이 기간에 보낸 결제 링크가 없습니다.", "sal_chart_funnel")
        _download("결제 링크 전환", figures["funnel_rows"], "sales_link_funnel.csv", "sal_csv_funnel")

    st.subheader("코호트 재구매율과 LTV")
    ltv_cols = st.columns([1, 3])
    ltv_cols[0].metric("LTV (고객 1명당)", format_krw(value.ltv))
    ltv_cols[1].caption(
        "LTV(고객 생애 가치) = 지금까지 구매한 고객 1명이 남긴 누적 순매출(환불 제외)의 평균입니다. "
        f"구매 고객 {value.customers:,}명 기준, 기간·상품 필터와 무관하게 전체 기간으로 셉니다. "
        "가입 월별 LTV는 아래 CSV에 있습니다."
    )
    st.caption("행: 첫 구매 월(가입 월), 열: 그 뒤 몇 개월째, 색: 그 달에 다시 산 고객의 비율(진할수록 높음).")
    _chart(figures["cohorts"], "아직 구매 고객이 없습니다.", "sal_chart_cohorts")
    _download("코호트", figures["cohorts"], "sales_cohorts.csv", "sal_csv_cohorts")

    st.subheader("정기결제: MRR과 해지율")
    st.caption("월별 정기결제 월 매출(MRR, 위)과 해지율·결제 실패율(아래). 위에서 달을 드래그하면 강조됩니다.")
    _chart(figures["subscriptions"], "정기결제 내역이 없습니다.", "sal_chart_subscriptions")
    _download("정기결제", figures["subscriptions"], "sales_subscriptions.csv", "sal_csv_subscriptions")

    left, right = st.columns(2)
    with left:
        st.subheader(TOP_CUSTOMERS)
        st.caption("누적 순매출 순 10명 · 'VIP' 표시는 설정 → VIP 고객의 기준에 드는 고객입니다.")
        _table(figures["vips"], "아직 구매 고객이 없습니다.", "sal_vips")
        _download(TOP_CUSTOMERS, figures["vips"], "sales_top_customers.csv", "sal_csv_vips")
    with right:
        st.subheader("상품별 재구매 주기")
        _table(figures["intervals"], "같은 상품을 다시 산 고객이 아직 없습니다.", "sal_intervals")
        _download("재구매 주기", figures["intervals"], "sales_repurchase.csv", "sal_csv_intervals")

    _referral_panel(first, last)


def _referral_panel(first: date, last: date) -> None:
    """추천 성과 (seed 004): purchases through referral links in the period, their revenue, the rewards
    paid to referrers and who referred most (core.rewards.queries)."""
    start, end = clock.kst_day_range(first, last)
    with session_scope(ui.engine()) as session:
        panel = reward_queries.referral_panel(session, start, end)
    st.subheader("추천 성과")
    st.caption("추천 링크로 처음 구매한 신규 고객의 주문(추천인에게 보상이 지급된 주문)만 셉니다. 보상은 기간에 지급한 쿠폰 금액과 포인트입니다.")
    cols = st.columns(3)
    cols[0].metric("추천 주문", f"{panel.orders:,}건")
    cols[1].metric("추천 매출", format_krw(panel.revenue), help="추천 주문의 결제 금액 − 환불")
    cols[2].metric("지급한 보상", format_krw(panel.rewards_paid))
    st.caption("추천 주문이 많은 고객 (상위 5명)")
    show_rows(
        [{**row, "추천 매출": format_krw(row["추천 매출"])} for row in panel.top_referrers],
        empty="이 기간에 보상이 지급된 추천이 없습니다.",
        key="sal_referrers",
    )
