"""AppTest harness: the 설정 > 메시지 section alone, as the owner in session state."""

import streamlit as st

import ui
from ui import feedback
from ui.settings_messaging import render

feedback.show("set")  # as pages/settings.py does
render(st.session_state["actor"], ui.engine())
