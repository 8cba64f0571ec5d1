"""ChannelDesk: staff log in here; st.navigation then offers only the screens their role may open.

Run with `streamlit run app.py` (scripts/start.sh starts this and the worker together).
"""

from __future__ import annotations

import time

import streamlit as st

import ui
from core import billing, clock  # noqa: F401 (billing registers the dunning-link hooks)
from core.auth import LoginFailed, authenticate
from core.config import ConfigError, get_settings
from core.db import DatabaseError, session_scope
from core.models.staff import ROLE_LABELS
from core.screens import PUBLIC_SCREENS, SCREENS, screens_for

st.set_page_config(page_title="ChannelDesk", page_icon=":material/storefront:", layout="wide")


def _login_page() -> None:
    st.title("ChannelDesk 로그인")
    st.caption("카카오톡 채널 샵의 백오피스")
    with st.form("login_form"):
        username = st.text_input("아이디", key="login_username")
        password = st.text_input("비밀번호", type="password", key="login_password")
        submitted = st.form_submit_button("로그인", type="primary")
    if submitted:
        try:
            with session_scope(ui.engine()) as session:
                actor = authenticate(session, username, password)
        except LoginFailed as exc:
            st.error(str(exc))
            return
        st.session_state["actor"] = actor
        st.session_state["last_seen"] = time.monotonic()
        st.rerun()


def _no_access_page() -> None:
    st.title("접근 권한이 없습니다")
    st.info("이 화면은 지금 계정의 역할로 열 수 없습니다. 왼쪽 메뉴의 화면을 이용하세요.")


def _logout() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def _expire_idle_session() -> None:
    """Log out after the configured idle time (a shared shop PC is common)."""
    last_seen = st.session_state.get("last_seen")
    idle_limit = get_settings().session_idle_minutes * 60
    if last_seen is not None and time.monotonic() - last_seen > idle_limit:
        _logout()
        st.session_state["expired"] = True
    else:
        st.session_state["last_seen"] = time.monotonic()


def main() -> None:
    try:
        get_settings()
        ui.engine()
    except (ConfigError, DatabaseError) as exc:
        st.error(str(exc))
        st.stop()

    _expire_idle_session()
    public = [
        st.Page(s.path, title=s.title, icon=s.icon, url_path=s.url_path, visibility="hidden")
        for s in PUBLIC_SCREENS
    ]
    actor = st.session_state.get("actor")
    if actor is None:
        if st.session_state.pop("expired", False):
            st.info("오래 사용하지 않아 로그아웃되었습니다. 다시 로그인하세요.")
        # Every staff URL shows the login too (a bookmarked /inquiries opens after logging in),
        # instead of Streamlit's English "Page not found".
        staff_urls = [
            st.Page(_login_page, title="로그인", url_path=s.url_path, visibility="hidden") for s in SCREENS
        ]
        page = st.navigation(
            [st.Page(_login_page, title="로그인", icon=":material/login:", default=True), *staff_urls, *public],
            position="hidden",
        )
        page.run()
        return

    pages = [
        st.Page(s.path, title=s.title, icon=s.icon, url_path=s.url_path) for s in screens_for(actor.role)
    ]
    with st.sidebar:
        st.markdown(f"**{actor.name}** · {ROLE_LABELS[actor.role]}")
        st.caption(f"현재 시각 {clock.format_kst(clock.now())} (KST)")
        if st.button("로그아웃", key="app_logout"):
            _logout()
            st.rerun()
    refused = [
        st.Page(_no_access_page, title="접근 권한 없음", url_path=s.url_path, visibility="hidden")
        for s in SCREENS
        if actor.role not in s.roles
    ]
    st.navigation(pages + refused + public, position="sidebar").run()


main()
