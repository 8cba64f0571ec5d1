"""설정: worker health, staff users, and each capability's settings section."""

import streamlit as st

import ui
from core import clock
from core.accounts.auth import change_role, create_user, reset_password, set_active
from core.accounts.staff import staff_users
from core.db import session_scope
from core.models.staff import ROLE_LABELS
from core.worker import worker_health
from ui import (
    feedback,
    settings_checkout,
    settings_customers,
    settings_inbound,
    settings_messaging,
    settings_reviews,
    settings_rewards,
    settings_sla,
    settings_vip,
)
from ui.labels import JOB_OUTCOME_LABELS, job_counts_sentence, job_label
from ui.tables import show_rows

actor = ui.current_actor()
st.title("설정")

feedback.show("set")
tab_sla, tab_messaging, tab_users, tab_worker, tab_inbound, tab_customers, tab_vip, tab_rewards = st.tabs(
    ["응답 기한·영업시간", "템플릿·자동화", "사용자", "자동 작업 상태", "연동", "고객 통합", "VIP 고객", "리워드"]
)

with tab_sla:
    settings_sla.render(actor, ui.engine())
    settings_reviews.render(actor, ui.engine())

with tab_messaging:
    settings_messaging.render(actor, ui.engine())
    settings_checkout.render(actor, ui.engine())  # the shop's refund policy and the welcome message

with tab_inbound:
    settings_inbound.render(actor, ui.engine())

with tab_worker:

    @st.fragment(run_every=5)
    def _worker_health() -> None:
        ui.live_guard()
        with session_scope(ui.engine()) as session:
            health = worker_health(session)
        if health["seconds_since_beat"] is None:
            st.error("자동 작업(워커)이 한 번도 실행되지 않았습니다. 서버에서 시작 스크립트로 워커를 켜세요.")
        elif health["alive"]:
            st.success(f"자동 작업 정상 동작 중 · 마지막 신호 {health['seconds_since_beat']}초 전")
        else:
            st.error(f"자동 작업 응답 없음 · 마지막 신호 {health['seconds_since_beat']}초 전")
        st.dataframe(
            [
                {"작업": job_label(job["job_id"]), "결과": JOB_OUTCOME_LABELS.get(job["outcome"], "기타"),
                 "시작": clock.format_kst(job["started_at"], True),
                 "처리": job_counts_sentence(job["counts"]), "오류": "있음 (로그 확인)" if job["error"] else ""}
                for job in health["jobs"]
            ],
            hide_index=True,
            width="stretch",
        )

    _worker_health()

with tab_users:
    with session_scope(ui.engine()) as session:
        users = staff_users(session)
    changed = feedback.highlighted("set")
    show_rows(
        [
            {"아이디": u.username, "이름": u.display_name, "역할": ROLE_LABELS.get(u.role, u.role),
             "활성": "예" if u.is_active else "아니오", "마지막 로그인": clock.format_kst(u.last_login_at)}
            for u in users
        ],
        key="set_users",
        highlight=lambda i: users[i].id == changed,
    )
    role_options = list(ROLE_LABELS)
    with st.form("set_user_add", clear_on_submit=True):
        st.subheader("사용자 추가")
        c1, c2, c3, c4 = st.columns(4)
        username = c1.text_input("아이디", key="set_new_username")
        display_name = c2.text_input("이름", key="set_new_name")
        role = c3.selectbox("역할", role_options, format_func=lambda r: ROLE_LABELS[r], key="set_new_role")
        password = c4.text_input("초기 비밀번호 (8자 이상)", type="password", key="set_new_password")
        if st.form_submit_button("추가"):
            feedback.run(
                "set",
                lambda session: create_user(session, actor, username=username, display_name=display_name,
                                            role=role, password=password),
                f"{display_name or username} 사용자를 추가했습니다.",
                highlight=lambda user: user.id,
            )
    with st.form("set_user_role"):
        st.subheader("역할 변경")
        c1, c2 = st.columns(2)
        user_id = c1.selectbox("사용자", [u.id for u in users],
                               format_func=lambda i: next(
                                   f"{u.display_name} · {ROLE_LABELS.get(u.role, '기타')}" for u in users if u.id == i),
                               key="set_role_user")
        new_role = c2.selectbox("새 역할", role_options, format_func=lambda r: ROLE_LABELS[r], key="set_role_new")
        if st.form_submit_button("변경") and user_id is not None:
            feedback.run(
                "set",
                lambda session: change_role(session, actor, user_id, new_role),
                "역할을 변경했습니다. 바로 적용되며, 그 사람은 다시 로그인해야 합니다.",
                highlight=lambda _: user_id,
            )
    with st.form("set_user_reset", clear_on_submit=True):
        st.subheader("비밀번호 재설정")
        c1, c2 = st.columns(2)
        reset_id = c1.selectbox("사용자", [u.id for u in users],
                                format_func=lambda i: next(u.display_name for u in users if u.id == i),
                                key="set_reset_user")
        reset_to = c2.text_input("새 비밀번호 (8자 이상)", type="password", key="set_reset_password")
        if st.form_submit_button("재설정") and reset_id is not None:
            feedback.run(
                "set",
                lambda session: reset_password(session, actor, reset_id, reset_to),
                "비밀번호를 바꿨습니다. 그 사람의 모든 로그인이 끝났습니다.",
                highlight=lambda _: reset_id,
            )
    with st.form("set_user_active"):
        st.subheader("계정 정지 · 다시 사용")
        c1, c2 = st.columns(2)
        target_id = c1.selectbox(
            "사용자", [u.id for u in users],
            format_func=lambda i: next(f"{u.display_name} ({'사용 중' if u.is_active else '정지됨'})"
                                       for u in users if u.id == i),
            key="set_active_user")
        action = c2.radio("처리", ["정지", "다시 사용"], horizontal=True, key="set_active_action")
        if st.form_submit_button("적용") and target_id is not None:
            feedback.run(
                "set",
                lambda session: set_active(session, actor, target_id, action == "다시 사용"),
                "계정을 정지했습니다. 그 사람의 모든 로그인이 바로 끝났습니다." if action == "정지"
                else "계정을 다시 사용합니다.",
                highlight=lambda _: target_id,
            )

with tab_customers:
    settings_customers.render(actor, ui.engine())

with tab_vip:
    settings_vip.render(actor, ui.engine())
with tab_rewards:
    settings_rewards.render(actor, ui.engine())
