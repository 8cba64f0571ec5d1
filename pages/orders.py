"""주문: the main list (deepened by its own capability)."""

import streamlit as st

import ui
from core import overview
from core.db import session_scope
from ui.tables import show_rows

actor = ui.current_actor()
st.title("주문")
with session_scope(ui.engine()) as session:
    rows = overview.recent_orders(session)
show_rows(rows, key="ord_list")
