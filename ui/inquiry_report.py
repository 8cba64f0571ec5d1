"""리포트 on 문의 (pages/inquiries.py): the share of inquiries handled within target, by type, staff
and week, the misses, and a CSV; computed on request (it reads every inquiry of the period)."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st
from sqlalchemy import Engine

from core import clock
from core.db import session_scope
from core.inquiries import report as sla_report
from core.inquiries import sla
from core.models.inquiries import INQUIRY_TYPE_LABELS
from ui import dates
from ui.labels import iso_week_text


def _bucket_rows(buckets: dict, label: str, names: dict | None = None) -> list[dict]:  # type: ignore[type-arg]
    """One table row per bucket (a type, a staff member, a week): counts, share and medians."""
    return [
        {
            label: (names or {}).get(key, key),
            "문의 수": b.total,
            "목표 내": b.within,
            "목표 내 비율": "-" if b.share_within is None else f"{b.share_within * 100:.1f}%",
            "첫 응답 중앙값": "-"
            if b.median_first_response is None
            else sla.format_duration(timedelta(seconds=b.median_first_response)),
            "해결 중앙값": "-"
            if b.median_resolution is None
            else sla.format_duration(timedelta(seconds=b.median_resolution)),
        }
        for key, b in sorted(buckets.items())
    ]


def render(engine: Engine) -> None:
    """The period, the switch that computes the report, then its tables and the CSV download."""
    today = clock.today_kst()
    r1, r2 = st.columns(2)
    since = today - timedelta(days=366 * 2)
    first_day = dates.day_select(
        "시작일", today - timedelta(days=27), key="inq_rep_from", first=since, last=today, container=r1
    )
    last_day = dates.day_select("종료일", today, key="inq_rep_to", first=since, last=today, container=r2)
    if last_day < first_day:
        st.error("종료일이 시작일보다 빠릅니다. 기간을 다시 선택해 주세요.")
        return
    start, end = clock.kst_day_range(first_day, last_day)
    # The report reads every inquiry of the period: computed on request, not on every queue rerun.
    if not st.toggle("리포트 계산", key="inq_rep_on"):
        st.caption("기간을 고른 뒤 '리포트 계산'을 켜세요.")
        # return, never st.stop(): st.stop() empties Streamlit's queue of pending reruns, so a card tap
        # sent while this full run was in progress was dropped (tests/test_desk_browser.py).
        return
    with session_scope(engine) as session:
        data = sla_report.report(session, start, end)
    overall = data.overall
    st.metric(
        "목표 내 처리 비율",
        "-" if overall.share_within is None else f"{overall.share_within * 100:.1f}%",
        help=f"{overall.within:,} / {overall.total:,}건",
    )
    st.markdown("**유형별**")
    st.dataframe(
        _bucket_rows(data.by_type, "유형", INQUIRY_TYPE_LABELS),
        hide_index=True,
        width="stretch",
        key="inq_rep_type",
    )
    st.markdown("**담당자별**")
    st.dataframe(_bucket_rows(data.by_staff, "담당자"), hide_index=True, width="stretch", key="inq_rep_staff")
    st.markdown("**주별**")
    st.dataframe(
        _bucket_rows(data.by_week, "주", {k: iso_week_text(k) for k in data.by_week}),
        hide_index=True,
        width="stretch",
        key="inq_rep_week",
    )
    st.markdown(f"**미준수 {len(data.misses):,}건**")
    st.dataframe(
        [
            {
                "문의": m.inquiry_id,
                "유형": INQUIRY_TYPE_LABELS.get(m.type, m.type),
                "담당자": m.assignee,
                "목표": "첫 응답" if m.target == "first_response" else "해결",
                "기한": clock.format_kst(m.due_at),
                "처리": clock.format_kst(m.done_at) if m.done_at else "미처리",
                "지연": sla.format_duration(timedelta(seconds=m.late_seconds)),
            }
            for m in data.misses[:500]
        ],
        hide_index=True,
        width="stretch",
        key="inq_rep_misses",
    )
    st.download_button(
        "CSV 내려받기",
        ("\ufeff" + sla_report.report_csv(data)).encode("utf-8"),
        file_name=f"inquiry_sla_{first_day}_{last_day}.csv",
        mime="text/csv",
        key="inq_rep_csv",
    )
