"""설정 → 응답 기한: the 리뷰 답변 목표 (hours of business time, counted like inquiries; default 24).

Called by pages/settings.py as `settings_reviews.render(actor, engine)`; the change goes through
core.reviews.service (owner only, audited)."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from core.accounts.actor import Actor
from core.db import session_scope
from core.reviews import queries, rules, service
from ui import feedback


def render(actor: Actor, engine: Engine) -> None:
    st.subheader("리뷰 답변 목표")
    with session_scope(engine) as session:
        target, _calendar = queries.answer_target(session)
    st.caption(
        "리뷰의 답변 기한을 문의와 같은 영업시간·휴일로 셉니다. 리뷰 화면의 ‘답변 기한 초과’가 이 목표를 따릅니다."
    )
    with st.form("setrev_form"):
        hours = st.number_input(
            "답변 목표 (영업시간 기준, 시간)",
            min_value=1,
            max_value=rules.MAX_ANSWER_HOURS,
            value=int(target.total_seconds() // 3600),
            key="setrev_hours",
        )
        if st.form_submit_button("리뷰 답변 목표 저장"):
            feedback.run(
                "set",
                lambda s: service.save_answer_target(s, actor, int(hours)),
                f"리뷰 답변 목표를 영업시간 {int(hours)}시간으로 저장했습니다.",
            )
