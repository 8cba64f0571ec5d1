"""ChannelDesk: the logged-in staff member's screens; st.navigation offers only those their role may open.

Served by server.py (`streamlit run server.py`; scripts/start.sh starts it and the worker), whose
/auth/login sets the session cookie this script resolves on every run.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import streamlit as st

import ui
from core import billing, clock  # noqa: F401 (billing registers the dunning-link hooks)
from core.accounts.actor import Actor
from core.accounts.auth import change_own_password, logout, resolve_session
from core.accounts.screens import PUBLIC_SCREENS, SCREENS, screens_for
from core.config import ConfigError, get_settings
from core.db import DatabaseError, session_scope
from core.errors import ChannelDeskError
from core.models.staff import ROLE_LABELS

st.set_page_config(page_title="ChannelDesk", page_icon=":material/storefront:", layout="wide")


def _login_page() -> None:
    """Shown when this tab's session ended (idle limit, logout elsewhere, revoked). The login itself is
    the HTML form at /auth/login (server.py): only an HTTP answer can set the HttpOnly cookie."""
    st.title("ChannelDesk 로그인")
    st.caption("카카오톡 채널 샵의 백오피스")
    reason = st.session_state.get("session_ended")
    if reason == "logout":
        st.info("로그아웃했습니다.")
    elif reason == "password":
        st.info("비밀번호를 바꿨습니다. 새 비밀번호로 다시 로그인하세요.")
    elif reason:
        st.info("오래 사용하지 않았거나 계정이 바뀌어 로그인이 끝났습니다. 다시 로그인하세요.")
    path = urlsplit(st.context.url or "").path or "/"
    st.link_button("로그인 화면으로", f"/auth/login?next={quote(path, safe='')}", type="primary")


def _no_access_page() -> None:
    st.title("접근 권한이 없습니다")
    st.info("이 화면은 지금 계정의 역할로 열 수 없습니다. 왼쪽 메뉴의 화면을 이용하세요.")


def _resolve_actor() -> Actor | None:
    """Who is logged in, asked of the database on every run: role, active flag, revocation, idle and
    absolute limits all apply at once, on every server sharing the store."""
    token = ui.session_token()
    actor = resolve_session(ui.engine(), token) if token else None
    if actor is None:
        if st.session_state.pop("actor", None) is not None:
            st.session_state.setdefault("session_ended", "expired")
    else:
        st.session_state["actor"] = actor
        st.session_state.pop("session_ended", None)
    return actor


def _own_password(actor: Actor) -> None:
    """Anyone changes their own password here (the current one required); every login of theirs ends."""
    with st.expander("내 비밀번호 바꾸기"), st.form("app_own_password", clear_on_submit=True):
        current = st.text_input("지금 비밀번호", type="password", key="app_pw_current")
        new = st.text_input("새 비밀번호 (8자 이상)", type="password", key="app_pw_new")
        again = st.text_input("새 비밀번호 확인", type="password", key="app_pw_again")
        if st.form_submit_button("바꾸기"):
            if new != again:
                st.error("새 비밀번호 두 칸이 다릅니다")
                return
            try:
                with session_scope(ui.engine()) as session:
                    change_own_password(session, actor, current, new)
            except ChannelDeskError as exc:
                st.error(str(exc))
                return
            st.session_state.pop("actor", None)
            st.session_state["session_ended"] = "password"
            st.rerun()


def _logout() -> None:
    logout(ui.engine(), ui.session_token())
    st.session_state.pop("actor", None)
    st.session_state["session_ended"] = "logout"


def main() -> None:
    try:
        get_settings()
        ui.engine()
    except (ConfigError, DatabaseError) as exc:
        st.error(str(exc))
        st.stop()

    actor = _resolve_actor()
    public = [
        st.Page(s.path, title=s.title, icon=s.icon, url_path=s.url_path, visibility="hidden")
        for s in PUBLIC_SCREENS
    ]
    if actor is None:
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
        _own_password(actor)
    refused = [
        st.Page(_no_access_page, title="접근 권한 없음", url_path=s.url_path, visibility="hidden")
        for s in SCREENS
        if actor.role not in s.roles
    ]
    st.navigation(pages + refused + public, position="sidebar").run()


main()
