"""설정: worker health, staff users, and each capability's settings section."""

import streamlit as st

import ui
from core import clock, overview
from core.db import session_scope
from core.models.staff import ROLE_LABELS

actor = ui.current_actor()
st.title("설정")

tab_worker, tab_users = st.tabs(["워커 상태", "사용자"])

with tab_worker:

    @st.fragment(run_every=5)
    def _worker_health() -> None:
        with session_scope(ui.engine()) as session:
            health = overview.worker_health(session)
        if health["seconds_since_beat"] is None:
            st.error("워커가 한 번도 실행되지 않았습니다. `python -m core.worker`를 실행하세요.")
        elif health["alive"]:
            st.success(f"워커 정상 동작 중 · 마지막 신호 {health['seconds_since_beat']}초 전")
        else:
            st.error(f"워커 응답 없음 · 마지막 신호 {health['seconds_since_beat']}초 전")
        st.dataframe(
            [
                {"작업": job["job_id"], "결과": job["outcome"], "시작": clock.format_kst(job["started_at"], True),
                 "건수": ", ".join(f"{k}={v}" for k, v in job["counts"].items()), "오류": job["error"] or ""}
                for job in health["jobs"]
            ],
            hide_index=True,
            width="stretch",
        )

    _worker_health()

with tab_users:
    with session_scope(ui.engine()) as session:
        users = overview.staff_users(session)
    st.dataframe(
        [
            {"아이디": u.username, "이름": u.display_name, "역할": ROLE_LABELS.get(u.role, u.role),
             "활성": "예" if u.is_active else "아니오", "마지막 로그인": clock.format_kst(u.last_login_at)}
            for u in users
        ],
        hide_index=True,
        width="stretch",
    )
    st.caption("사용자 추가: `python -m core.cli user add --username 아이디 --role owner|cs|staff`")
