"""문의: the main list (deepened by its own capability)."""

import streamlit as st

import ui
from core import overview
from core.db import session_scope
from ui.tables import show_rows

actor = ui.current_actor()
st.title("문의")
with session_scope(ui.engine()) as session:
    rows = overview.open_inquiries(session)
show_rows(rows, key="inq_list")
