"""Page chrome shared by every screen: the cached engine, the logged-in actor, formatting.

Pages are thin: read through core, render, call a core service on an action. Nothing here holds
domain logic.
"""

from __future__ import annotations

import re
from datetime import timedelta

import streamlit as st
from sqlalchemy import Engine

from core import clock
from core.accounts.actor import Actor
from core.accounts.auth import SESSION_COOKIE, resolve_session
from core.db import make_engine, upgrade


def _serve_every_page_through_app() -> None:
    """Leave Streamlit's legacy `pages/` folder mode on the process's first run.

    Streamlit decides once per process, before any script runs, that an app with a `pages/` folder
    serves those scripts by itself; only app.py's st.navigation turns that off. So the very first
    visitor of a fresh server opening /inquiries would get that script run directly (a blank page
    and a list of every script) instead of app.py's login. Every script imports this module first:
    on that first run we switch the mode off and rerun, so app.py decides what the visitor sees.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and st.runtime.exists():
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_resource(show_spinner=False)
def _engine(url: str | None) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


def engine() -> Engine:
    """The one engine of this Streamlit process (st.cache_resource: the engine only)."""
    from core.config import get_settings

    return _engine(get_settings().database_url)


def session_token() -> str | None:
    """The browser's session cookie (set by server.py's /auth/login). AppTest sends no cookies: tests
    open a real session row and put its token in session_state; nothing a visitor sends sets that key."""
    cookie = st.context.cookies.get(SESSION_COOKIE)
    if isinstance(cookie, str) and cookie:  # (AppTest answers with a mock object, not a string)
        return cookie
    token = st.session_state.get("session_token")
    return token if isinstance(token, str) else None


LIVE_CHECK_EVERY = timedelta(seconds=20)


def still_logged_in() -> bool:
    """For live fragments (run_every): is this tab's session still valid? Asked of the database at most
    every LIVE_CHECK_EVERY, and without counting as activity, so an unattended screen still reaches
    the idle limit instead of refreshing customer data forever."""
    now = clock.now()
    checked = st.session_state.get("_live_checked_at")
    if checked is not None and now - checked < LIVE_CHECK_EVERY:
        return st.session_state.get("actor") is not None
    st.session_state["_live_checked_at"] = now
    if resolve_session(engine(), session_token(), touch=False) is not None:
        return True
    st.session_state.pop("actor", None)
    st.session_state["session_ended"] = "expired"
    return False


def live_guard() -> None:
    """First line of every live fragment: after the session ends, stop and show the login (a full rerun:
    app.py then routes to the login page)."""
    if not still_logged_in():
        st.rerun(scope="app")


def current_actor() -> Actor:
    """The logged-in staff member; app.py routes anyone else to the login page."""
    actor = st.session_state.get("actor")
    if actor is None:
        st.stop()
    return actor


# Inline markdown only: the text always follows our own words, so list markers (- + 1.) cannot start a line.
_MARKDOWN = re.compile(r"([\\`*_\[\]()#!|<>~$])")


def md_escape(text: object) -> str:
    """Customer or imported text inside st.caption / st.subheader (which read markdown): shown as typed,
    so a name like `![x](https://tracker)` or `[링크](https://phish)` loads and links nothing."""
    return _MARKDOWN.sub(r"\\\1", str(text))


# Last, after every definition: the rerun it may raise ends this import, and a session that started
# at the same moment is handed the module as it stood then (Python gives a waiting importer the
# half-run module). Called at the top it held no `engine` yet: 19 of 20 staff sessions opened at
# once on a fresh server failed their first run with "module 'ui' has no attribute 'engine'".
_serve_every_page_through_app()
