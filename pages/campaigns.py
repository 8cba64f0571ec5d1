"""캠페인: the main list (deepened by its own capability)."""

import streamlit as st

import ui
from core import overview
from core.db import session_scope
from ui.tables import show_rows

actor = ui.current_actor()
st.title("캠페인")
with session_scope(ui.engine()) as session:
    rows = overview.campaigns(session)
show_rows(rows, key="cmp_list")
