"""매출: the main list (deepened by its own capability)."""

import streamlit as st

import ui
from core import overview
from core.db import session_scope
from ui.tables import show_rows

actor = ui.current_actor()
st.title("매출")
with session_scope(ui.engine()) as session:
    rows = overview.sales_by_month(session)
show_rows(rows, key="sal_list")
