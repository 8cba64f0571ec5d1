"""설정 → 고객 통합: who was merged into one customer (one person, one number), and how many numbers
are not mobile numbers. Called by pages/settings.py as `settings_customers.render(actor, engine)`.

The merge itself is core.customers.merge (owner only, audited per merged number); this block reads
its audit rows and offers the owner the re-check after a numbering-plan update.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from core import clock
from core.accounts.actor import Actor
from core.accounts.auth import phone_for
from core.customers import merge
from core.customers.identity import NOT_MOBILE
from core.db import session_scope
from ui import feedback
from ui.tables import show_rows


def render(actor: Actor, engine: Engine) -> None:
    st.subheader("고객 통합 (한 사람, 한 고객)")
    st.caption(
        "같은 휴대전화 번호로 들어온 고객은 한 명으로 합쳐집니다. 주문·결제·메시지·문의는 남는 고객으로 옮겨지고, "
        "광고 수신거부가 한 번이라도 있으면 합친 고객도 수신거부입니다."
    )
    with session_scope(engine) as session:
        history = merge.merge_history(session, actor)
        not_mobile = merge.not_mobile_count(session)
    st.metric(f"{NOT_MOBILE} (메시지를 받지 않는 고객)", f"{not_mobile:,}명")
    show_rows(
        [
            {
                "통합 시각": clock.format_kst(r.at),
                "남은 고객": f"{r.kept_name} (#{r.kept_id})",
                "번호": phone_for(actor, r.kept_phone),
                "합쳐진 고객": ", ".join(f"{m.get('name', '')} (#{m.get('id', '')})" for m in r.merged),
                "합쳐진 수": f"{len(r.merged)}명",
                "광고 수신": "수신거부" if r.opted_out else "남은 고객의 동의 그대로",
                "실행": r.actor_name,
            }
            for r in history
        ],
        empty="아직 합쳐진 고객이 없습니다.",
        key="set_customer_merges",
    )
    with st.form("set_customer_merge_form"):
        st.caption("번호 체계가 바뀐 뒤(예: 새 휴대전화 국번) 모든 번호를 다시 확인하고 같은 번호의 고객을 합칩니다.")
        sure = st.checkbox("같은 번호의 고객을 합치는 데 동의합니다 (되돌릴 수 없음)", key="set_customer_merge_sure")
        go = st.form_submit_button("번호 다시 확인하고 합치기")
    if go:
        if not sure:
            feedback.failed("set", "합치기 전에 동의 확인란을 선택하세요")
            return
        feedback.run(
            "set",
            lambda session: merge.merge_all(session, actor),
            lambda report: f"번호를 다시 확인했습니다: {report.rows_merged:,}명을 {report.numbers_merged:,}명으로 합쳤습니다.",
        )
