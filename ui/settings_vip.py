"""설정 → VIP 고객: who is VIP (the owner's rule over spend, rank and orders) and the shorter answer
targets for their inquiries.

Called by pages/settings.py as `settings_vip.render(actor, engine)`. The rule is saved through
core.customers.vip.save, the targets through core.inquiries.service.save_vip_sla (owner only,
audited; open inquiries are re-timed). The count shown is the one the badges and the 캠페인 segment
"VIP 고객" give, computed now from the customer summaries.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st
from sqlalchemy import Engine

from core.accounts.actor import Actor
from core.customers import vip
from core.db import read_scope
from core.inquiries import policy as sla_policy
from core.inquiries import service as inquiries
from ui import feedback
from ui.labels import VIP_BADGE
from ui.settings_sla import duration_picker


def render(actor: Actor, engine: Engine) -> None:
    with read_scope(engine) as session:
        rule = vip.load(session)
        members = vip.count(session)
        targets = sla_policy.setting(session, "vip_sla") or {}
    st.subheader("VIP 고객")
    st.caption(
        f"최근 {rule.window_days}일 안에 산 고객 중 기준에 맞는 고객이 VIP입니다. 문의 큐·문의 상세·주문에 "
        f"{VIP_BADGE} 표시가 붙고, 캠페인의 'VIP 고객' 조건이 같은 고객을 고릅니다. 구매액은 환불을 뺀 누적 결제액이며, "
        "결제·환불이 기록되는 순간 반영됩니다."
    )
    st.metric("지금 VIP 고객", f"{members:,}명" if rule.active else "기준 없음")
    with st.form("set_vip_rule"):
        c1, c2, c3 = st.columns(3)
        spend = c1.number_input(
            "구매액 기준 (원 이상, 0 = 안 씀)",
            min_value=0,
            max_value=vip.MAX_SPEND,
            step=100_000,
            value=rule.min_spend or 0,
            key="set_vip_spend",
        )
        percent = c2.number_input(
            "구매액 상위 (%, 0 = 안 씀)",
            min_value=0.0,
            max_value=100.0,
            step=1.0,
            value=float(rule.top_percent or 0),
            key="set_vip_percent",
        )
        orders = c3.number_input(
            "최소 주문 수", min_value=1, max_value=100_000, value=rule.min_orders, key="set_vip_orders"
        )
        match = st.radio(
            "두 기준을 모두 쓸 때",
            list(vip.MATCHES),
            format_func=vip.MATCHES.get,
            horizontal=True,
            index=list(vip.MATCHES).index(rule.match),
            key="set_vip_match",
        )
        if st.form_submit_button("VIP 기준 저장"):
            raw = {
                "min_spend": spend or None,
                "top_percent": percent or None,
                "min_orders": orders,
                "match": match,
            }
            feedback.run("set", lambda session: vip.save(session, actor, raw), "VIP 기준을 저장했습니다.")

    st.markdown("**VIP 문의 응답 기한** · 유형별 기한보다 짧을 때만 적용 (0시간 0분이면 유형별 기한)")
    with st.form("set_vip_sla"):
        c1, c2 = st.columns(2)
        first = duration_picker(
            c1, "첫 응답", timedelta(minutes=int(targets.get("first_response_minutes") or 0)), "set_vip_first"
        )
        resolution = duration_picker(
            c2, "해결", timedelta(minutes=int(targets.get("resolution_minutes") or 0)), "set_vip_resolution"
        )
        if st.form_submit_button("VIP 응답 기한 저장"):
            feedback.run(
                "set",
                lambda session: inquiries.save_vip_sla(
                    session,
                    actor,
                    first_response_minutes=int(first) or None,
                    resolution_minutes=int(resolution) or None,
                ),
                "VIP 응답 기한을 저장했습니다. 열린 문의의 기한을 다시 계산했습니다.",
            )
