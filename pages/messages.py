"""메시지: the main list (deepened by its own capability)."""

import streamlit as st

import ui
from core import overview
from core.db import session_scope
from ui.tables import show_rows

actor = ui.current_actor()
st.title("메시지")
with session_scope(ui.engine()) as session:
    rows = overview.recent_messages(session)
show_rows(rows, key="msg_list")
