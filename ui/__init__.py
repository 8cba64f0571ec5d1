"""Page chrome shared by every screen: the cached engine, the logged-in actor, formatting.

Pages are thin: read through core, render, call a core service on an action. Nothing here holds
domain logic.
"""

from __future__ import annotations

import re

import streamlit as st
from sqlalchemy import Engine

from core.auth import Actor
from core.db import make_engine, upgrade


@st.cache_resource(show_spinner=False)
def _engine(url: str | None) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


def engine() -> Engine:
    """The one engine of this Streamlit process (st.cache_resource: the engine only)."""
    from core.config import get_settings

    return _engine(get_settings().database_url)


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
